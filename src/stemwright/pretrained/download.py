"""Downloading published weights into stemwright's cache, verified by checksum.

- Cache folder: ``$STEMWRIGHT_CACHE`` if set, else the platform's user cache dir (``platformdirs.user_cache_dir("stemwright")``,
  e.g. ``~/.cache/stemwright`` on Linux). Weights go to ``CACHE/models/<family>/<filename>``.
- A download streams to a temporary name in the destination folder (``.NAME.XXXX.part``), is verified, and only then
  renamed to its final name, so an interrupted or tampered download never leaves a file that looks complete.
- Verification: by the full sha256 when the catalogue has it, else by the sha256 *prefix* the publisher embeds in the
  file name (torch.hub / demucs / Open-Unmix convention, e.g. ``vocals-b62c91ce.pth``). A mismatch is refused with a
  :class:`ChecksumError` naming the file, the expected and the actual digest.
- Offline (``offline=True`` or ``STEMWRIGHT_OFFLINE=1``): nothing is fetched; a file that is not in the cache is a
  :class:`DownloadError` saying where it was expected and how to put it there.

Tests never touch the network: ``file://`` URLs work, and :func:`fetch` can be monkeypatched.
"""
from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import urllib.request
from pathlib import Path
from typing import IO, Callable

from tqdm import tqdm

from stemwright.cache import cache_dir  # re-exported: the loaders import it from here
from stemwright.errors import DownloadError  # a file cannot be obtained (offline, network, bad URL)


log = logging.getLogger(__name__)

CHUNK = 1 << 20


class ChecksumError(DownloadError):
    """A file's sha256 does not match the catalogue: corrupt or tampered with; it is refused."""


def env_offline() -> bool:
    """True when ``STEMWRIGHT_OFFLINE`` is set to a true value (1, true, yes)."""
    return os.environ.get("STEMWRIGHT_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def verify(path: Path, *, sha256: str | None = None, sha256_prefix: str | None = None) -> str:
    """Check ``path`` against a full sha256 or a sha256 prefix; returns the actual digest.

    Raises :class:`ChecksumError` on mismatch, :class:`ValueError` when neither checksum is given.
    """
    if not sha256 and not sha256_prefix:
        raise ValueError(f"{path}: no checksum to verify against (need sha256 or sha256_prefix)")
    digest = sha256_of(path)
    expected = (sha256 or sha256_prefix or "").lower()
    if not digest.startswith(expected):
        kind = "sha256" if sha256 else "sha256 prefix"
        raise ChecksumError(
            f"{path}: checksum mismatch, the file is corrupt or has been tampered with "
            f"(expected {kind} {expected}, got {digest[: max(len(expected), 12)]}); refusing to use it"
        )
    return digest


def fetch(url: str, out: IO[bytes], progress: Callable[[int, int | None], None] | None = None) -> None:
    """Stream ``url`` into the open binary file ``out``; ``progress(bytes_done, total_or_None)`` after each block.

    Works for ``http(s)://`` and ``file://`` URLs. Tests monkeypatch this function to stay off the network.
    """
    request = urllib.request.Request(url, headers={"User-Agent": "stemwright"})
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 (URLs come from the catalogue)
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        done = 0
        while block := response.read(CHUNK):
            out.write(block)
            done += len(block)
            if progress is not None:
                progress(done, total)


def _progress_bar(name: str, enabled: bool):
    """A tqdm bar in bytes, or a no-op callback."""
    if not enabled:
        return None, lambda done, total: None

    bar = tqdm(desc=f"download {name}", unit="B", unit_scale=True, unit_divisor=1024, leave=False)

    def update(done: int, total: int | None) -> None:
        if total is not None and bar.total != total:
            bar.total = total
        bar.update(done - bar.n)

    return bar, update


def download(
    url: str,
    dest: Path,
    *,
    sha256: str | None = None,
    sha256_prefix: str | None = None,
    offline: bool = False,
    progress: bool = True,
) -> Path:
    """Make sure ``dest`` exists and matches its checksum, downloading it from ``url`` if needed.

    An existing file is verified (a tampered cached file raises :class:`ChecksumError`; delete it to re-download).
    Returns ``dest``.
    """
    dest = Path(dest)
    if dest.exists():
        verify(dest, sha256=sha256, sha256_prefix=sha256_prefix)
        return dest
    if offline or env_offline():
        raise DownloadError(
            f"{dest}: not in the cache and offline mode forbids downloading it from {url}; "
            f"run once without --offline, or copy the file there (STEMWRIGHT_CACHE={cache_dir()})"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    bar, update = _progress_bar(dest.name, progress)
    try:
        with os.fdopen(fd, "wb") as out:
            log.info("downloading %s -> %s", url, dest)
            try:
                fetch(url, out, update)
            except OSError as e:  # URLError, HTTPError, timeouts are OSErrors
                raise DownloadError(f"{url}: download failed ({e})") from None
        verify(tmp, sha256=sha256, sha256_prefix=sha256_prefix)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        if bar is not None:
            bar.close()
    return dest
