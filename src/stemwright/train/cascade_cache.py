"""Training data for a cascade's instrument splitter: what the splitter really receives, cached once per song.

In a :class:`~stemwright.models.cascade.Cascade` (the 4-stem default) the splitter never sees a clean instrumental
mix: it receives ``rest = mixture - vocals_est``, with the vocals model's residue (real voice it missed, its 11 kHz
mask edge, instruments it took for voice). :func:`build_cascade_cache` runs the cascade once per song with vocals,
through the engine exactly as ``stemwright separate`` does (the cascade's own chunking), and writes a stems folder
whose stems sum to ``rest``:

- ``drums.wav``, ``bass.wav``: the song's true stems, as they are;
- ``other.wav``: ``rest - drums - bass``, the cascade's residual rule (its ``other`` takes what the others leave), i.e.
  the true other plus the vocal residue ``vocals - vocals_est``. A perfect splitter of ``rest`` therefore gives the
  cascade's best possible drums / bass / other for this vocals model.

So the training loop (``stemwright train``, ``type: synth`` sets with ``stems: [drums, bass, other]``) and its
validation read the cache like any stems folder and never run the vocals model. Each cached song is written to a
hidden temporary folder and renamed into place, so an interrupted build is resumed by running it again (finished
songs are kept). ``cache.json`` in each song folder records the source song, the vocals model and its vocal SDR.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch import nn

from stemwright.audio.io import is_audio_path, read_audio
from stemwright.engine.run import separate_tensor
from stemwright.errors import StemwrightError
from stemwright.metrics.sdr import mdx_sdr

log = logging.getLogger(__name__)

TARGETS = ("drums", "bass", "other")  # the splitter's stems, in the cache's file order
NEEDED = ("drums", "bass", "other", "vocals")


class CascadeCacheError(StemwrightError):
    """A song folder cannot be cached (missing or mismatched stems) or the vocals model is unsuitable."""


@dataclass(frozen=True)
class CachedSong:
    """What one cached song recorded: its name, whether it was built now (False: already there), the vocal SDR of
    the vocals model on it (dB, ``None`` when the song has silent vocals) and the residue's level relative to the
    rest (dB)."""

    name: str
    built: bool
    vocals_sdr: float | None
    residue_db: float | None


def _stem_file(song: Path, name: str) -> Path:
    for f in sorted(song.iterdir()):
        if f.is_file() and f.stem == name and is_audio_path(f):
            return f
    raise CascadeCacheError(f"{song}: no {name} stem (a cascade cache needs {', '.join(NEEDED)})")


def read_song_stems(song: Path, samplerate: int) -> dict[str, np.ndarray]:
    """The song's true stems, float32 ``(C, T)``, cut to the shortest one. Raises :class:`CascadeCacheError` for a
    missing stem or a sample rate other than ``samplerate``."""
    stems = {}
    for name in NEEDED:
        audio = read_audio(_stem_file(song, name))
        if audio.samplerate != samplerate:
            raise CascadeCacheError(f"{song}: {name} is {audio.samplerate} Hz, the model runs at {samplerate} Hz")
        stems[name] = np.ascontiguousarray(audio.samples, dtype=np.float32)
    n = min(s.shape[1] for s in stems.values())
    channels = {s.shape[0] for s in stems.values()}
    if len(channels) != 1:
        raise CascadeCacheError(f"{song}: the stems have different channel counts {sorted(channels)}")
    return {k: v[:, :n] for k, v in stems.items()}


def cascade_vocals(model: nn.Module, mixture: np.ndarray) -> np.ndarray:
    """The cascade's vocals estimate for ``mixture``, run through the engine as ``stemwright separate`` runs it (the
    model's own chunking and overlap). Shape: ``(C, T)`` -> ``(C, T)`` float32."""
    if "vocals" not in model.sources:
        raise CascadeCacheError(f"the vocals model has no vocals stem (it has {tuple(model.sources)})")
    stems = separate_tensor(model, torch.from_numpy(mixture))
    return stems[list(model.sources).index("vocals")].numpy().astype(np.float32)


def cascade_targets(stems: dict[str, np.ndarray], vocals_est: np.ndarray) -> dict[str, np.ndarray]:
    """The splitter's input and targets from a song's true stems and the cascade's vocals estimate: ``drums`` and
    ``bass`` as they are, ``other = rest - drums - bass`` with ``rest = mixture - vocals_est`` (the cascade's residual
    rule). Shapes: each ``(C, T)``. The caller's arrays are not modified."""
    mixture = stems["drums"] + stems["bass"] + stems["other"] + stems["vocals"]
    rest = mixture - vocals_est
    return {"drums": stems["drums"], "bass": stems["bass"], "other": (rest - stems["drums"] - stems["bass"]).astype(np.float32)}


def _level_db(x: np.ndarray, ref: np.ndarray) -> float | None:
    e, r = float(np.sum(x.astype(np.float64) ** 2)), float(np.sum(ref.astype(np.float64) ** 2))
    return round(10 * np.log10(e / r), 2) if e > 0 and r > 0 else None


def cache_song(model: nn.Module, song: Path, out: Path, *, model_name: str) -> CachedSong:
    """Cache one song folder into ``out/<song name>`` (atomically); an existing cached song is kept as it is."""
    dest = out / song.name
    if dest.is_dir():
        return CachedSong(song.name, False, None, None)
    stems = read_song_stems(song, int(model.samplerate))
    mixture = stems["drums"] + stems["bass"] + stems["other"] + stems["vocals"]
    vocals_est = cascade_vocals(model, mixture)
    targets = cascade_targets(stems, vocals_est)
    has_vocals = float(np.sum(stems["vocals"].astype(np.float64) ** 2)) > 1e-6
    record = CachedSong(
        song.name,
        True,
        round(mdx_sdr(stems["vocals"], vocals_est), 2) if has_vocals else None,
        _level_db(stems["vocals"] - vocals_est, mixture - vocals_est),
    )
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{song.name}.", suffix=".part", dir=out))
    try:
        for name in TARGETS:
            sf.write(str(tmp / f"{name}.wav"), targets[name].T, int(model.samplerate), subtype="FLOAT", format="WAV")
        doc = {"source_song": str(song), "vocals_model": model_name, "vocals_sdr_db": record.vocals_sdr,
               "residue_db": record.residue_db, "rule": "other = (mixture - vocals_est) - drums - bass"}
        (tmp / "cache.json").write_text(json.dumps(doc, indent=1) + "\n")
        os.chmod(tmp, 0o755)  # mkdtemp makes 0700; the cached song gets ordinary permissions
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return record


def song_folders(root: Path) -> list[Path]:
    """The song folders under ``root`` (hidden ones, i.e. songs still being written, skipped), sorted."""
    if not root.is_dir():
        raise CascadeCacheError(f"{root}: songs folder not found")
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def build_cascade_cache(model: nn.Module, songs: Path, out: Path, *, model_name: str) -> list[CachedSong]:
    """Cache every song folder under ``songs`` into ``out`` (see the module docstring). ``model`` must produce a
    ``vocals`` stem (the cascade, or its vocals member with the cascade's chunking). Returns one record per song."""
    records = []
    for song in song_folders(songs):
        rec = cache_song(model, song, out, model_name=model_name)
        log.info("%s: %s (vocals SDR %s dB, residue %s dB)", song.name, "cached" if rec.built else "kept",
                 rec.vocals_sdr, rec.residue_db)
        records.append(rec)
    return records
