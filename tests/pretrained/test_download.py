"""Verified, atomic downloads into the cache; offline mode. Never touches the network (file:// and a fake fetch)."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from stemwright.pretrained import download as dl
from stemwright.pretrained.download import ChecksumError, DownloadError, cache_dir, download, verify


@pytest.fixture
def payload(tmp_path) -> tuple[Path, str]:
    src = tmp_path / "src" / "weights-abc.bin"
    src.parent.mkdir()
    src.write_bytes(bytes(range(256)) * 5000)
    return src, hashlib.sha256(src.read_bytes()).hexdigest()


def test_cache_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("STEMWRIGHT_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    monkeypatch.delenv("STEMWRIGHT_CACHE")
    assert cache_dir().name == "stemwright"


@pytest.mark.parametrize("kind", ["sha256", "sha256_prefix"])
def test_file_url_download_verified(payload, tmp_path, kind):
    src, digest = payload
    dest = tmp_path / "cache" / "w.bin"
    check = {kind: digest if kind == "sha256" else digest[:8]}
    assert download(src.as_uri(), dest, progress=False, **check) == dest
    assert dest.read_bytes() == src.read_bytes()
    assert list(dest.parent.iterdir()) == [dest]  # no temporary file left


def test_tampered_download_refused_and_not_kept(payload, tmp_path):
    src, digest = payload
    dest = tmp_path / "cache" / "w.bin"
    bad = ("0" if digest[0] != "0" else "1") + digest[1:8]
    with pytest.raises(ChecksumError, match="tampered"):
        download(src.as_uri(), dest, sha256_prefix=bad, progress=False)
    assert not dest.exists() and not list(dest.parent.glob(".*part"))


def test_tampered_cached_file_refused(payload, tmp_path):
    src, digest = payload
    dest = tmp_path / "cache" / "w.bin"
    download(src.as_uri(), dest, sha256=digest, progress=False)
    dest.write_bytes(dest.read_bytes()[:-1] + b"\x00")
    with pytest.raises(ChecksumError, match=str(dest)):
        download(src.as_uri(), dest, sha256=digest, progress=False)


def test_offline(payload, tmp_path, monkeypatch):
    src, digest = payload
    dest = tmp_path / "cache" / "w.bin"
    with pytest.raises(DownloadError, match="offline"):
        download(src.as_uri(), dest, sha256=digest, offline=True)
    monkeypatch.setenv("STEMWRIGHT_OFFLINE", "1")
    with pytest.raises(DownloadError, match="offline"):
        download(src.as_uri(), dest, sha256=digest)
    monkeypatch.delenv("STEMWRIGHT_OFFLINE")
    download(src.as_uri(), dest, sha256=digest, progress=False)
    assert download("https://example.invalid/w.bin", dest, sha256=digest, offline=True) == dest  # cached: fine


def test_http_through_fake_fetch_with_progress(payload, tmp_path, monkeypatch):
    src, digest = payload
    seen: list[tuple[int, int | None]] = []

    def fake_fetch(url, out, progress=None):
        assert url == "https://example.org/w.bin"
        data = src.read_bytes()
        for i in range(0, len(data), 100_000):
            out.write(data[i : i + 100_000])
            if progress:
                progress(min(i + 100_000, len(data)), len(data))
                seen.append((i, len(data)))

    monkeypatch.setattr(dl, "fetch", fake_fetch)
    dest = download("https://example.org/w.bin", tmp_path / "c" / "w.bin", sha256=digest, progress=True)
    assert dest.read_bytes() == src.read_bytes() and len(seen) > 3


def test_network_failure_is_a_clear_error(tmp_path, monkeypatch):
    def failing(url, out, progress=None):
        raise OSError("connection refused")

    monkeypatch.setattr(dl, "fetch", failing)
    with pytest.raises(DownloadError, match="download failed"):
        download("https://example.org/w.bin", tmp_path / "w.bin", sha256_prefix="abcdef12", progress=False)
    assert not list(tmp_path.iterdir())


def test_verify_needs_a_checksum(payload):
    with pytest.raises(ValueError, match="no checksum"):
        verify(payload[0])
