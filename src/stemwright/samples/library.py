"""A sample library from a separated song: bar loops of every stem and drum one-shots, with a searchable index.

Layout of ``LIBRARY/``::

    index.json                     {"version": 1, "samples": [SampleEntry, ...]}
    loops/<song>/<song>_<stem>_<bpm>bpm_<key>_bar<NNN>_<n>bar.wav
    one-shots/<song>/<song>_drums_<class>_<NNN>.wav

Adding a song again replaces its entries and files (other songs' stay); the index is written atomically.
"""
from __future__ import annotations

import json
import logging
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from stemwright.analysis import SongAnalysis, analyze
from stemwright.atomic import atomic_write
from stemwright.audio.io import write_audio
from stemwright.errors import StemwrightError
from stemwright.mixer.analysis import Key, parse_key
from stemwright.mixer.stems import StemSet, as_stemset
from stemwright.samples.loops import FADE_S, SNAP_S, cut_loops, fade_ends, nearest_zero_crossing, rms_dbfs
from stemwright.samples.oneshots import extract_one_shots

log = logging.getLogger(__name__)

INDEX_NAME = "index.json"
INDEX_VERSION = 1
BARS = (1, 2, 4)
KINDS = ("loop", "one-shot")


class LibraryError(StemwrightError):
    """A library folder or index that cannot be used (the message names it)."""


@dataclass(frozen=True, kw_only=True)
class SampleEntry:
    """One sample of the index. ``path`` is relative to the library folder; times in seconds."""

    path: str
    kind: str  # "loop" | "one-shot"
    song: str
    stem: str
    bpm: float
    key: str
    duration_s: float
    rms_dbfs: float
    peak_dbfs: float
    source_start_s: float
    bar: int | None = None  # loops: 1-based bar number of the first bar
    bars: int | None = None  # loops: length in bars
    drum_class: str | None = None  # one-shots: kick / snare / hat / other
    chords: str | None = None  # loops: the chords over the loop, in order ("Am F C G"; analysis chords)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise LibraryError(f"index: kind must be one of {KINDS}, got {self.kind!r}")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.+-]+", "-", text).strip("-") or "song"


def _key_tag(key: str) -> str:
    tonic, mode = key.split()
    return tonic.replace("#", "s") + ("m" if mode == "minor" else "")


def _db(x: float) -> float:
    return round(float(x), 2) if np.isfinite(x) else -200.0


def _chords_between(a: SongAnalysis, start: float, end: float) -> str | None:
    """Names of the analysis chords sounding in [start, end) seconds, repeats merged ("Am F C G")."""
    names: list[str] = []
    for c in a.chords:
        if c.end > start + 0.05 and c.start < end - 0.05 and c.label != "N" and (not names or names[-1] != c.name):
            names.append(c.name)
    return " ".join(names) or None


def _write_sample(lib: Path, rel: Path, audio: np.ndarray, samplerate: int, start: int, **fields: Any) -> SampleEntry:
    """Write ``audio`` ``(C, T)`` as 24-bit WAV at ``lib / rel`` and return its index entry: path, length, levels and
    source start (``start``, in samples) measured here, the rest from ``fields``."""
    write_audio(lib / rel, audio, samplerate, fmt="wav", bit_depth=24, overwrite=True)
    return SampleEntry(
        path=rel.as_posix(), duration_s=round(audio.shape[1] / samplerate, 4), rms_dbfs=_db(rms_dbfs(audio)),
        peak_dbfs=_db(20 * np.log10(max(float(np.abs(audio).max()), 1e-10))),
        source_start_s=round(start / samplerate, 4), **fields)


def read_index(library: str | Path) -> list[SampleEntry]:
    """The entries of ``LIBRARY/index.json`` (an empty list for a library not yet written)."""
    path = Path(library) / INDEX_NAME
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text())
        if data.get("version") != INDEX_VERSION:
            raise LibraryError(f"{path}: index version {data.get('version')!r}, expected {INDEX_VERSION}")
        return [SampleEntry(**e) for e in data["samples"]]
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as e:
        raise LibraryError(f"{path}: not a stemwright sample index ({e})") from None


def _write_index(library: Path, entries: list[SampleEntry]) -> None:
    text = json.dumps({"version": INDEX_VERSION, "samples": [asdict(e) for e in entries]}, indent=1)
    atomic_write(library / INDEX_NAME, lambda tmp: tmp.write_text(text))


def build_library(stems: Any, library: str | Path, *, song: str | None = None, bars: Iterable[int] = BARS,
                  one_shots: bool = False, analysis: SongAnalysis | None = None,
                  drum_stem: str = "drums") -> list[SampleEntry]:
    """Cut loops (and drum one-shots) of one song's stems into ``library`` and update its index.

    ``stems``: a folder or :class:`StemSet`; ``song``: the name used in file names (default: the folder's name).
    Returns the new entries of this song.
    """
    s = as_stemset(stems)
    bars = tuple(sorted(set(int(b) for b in bars)))
    if not bars or any(b not in BARS for b in bars):
        raise LibraryError(f"bars: each must be one of {BARS}, got {bars}")
    name = _slug(song or (s.path.name if s.path else "song"))
    lib = Path(library)
    # every input checked before the analysis (seconds) and before any file is written
    if lib.exists() and not lib.is_dir():
        raise LibraryError(f"{lib}: not a folder")
    if one_shots and drum_stem not in s.audio:
        raise LibraryError(f"one-shots: no {drum_stem!r} stem in {s.path or 'the stems'} (stems: {', '.join(s.names)})")
    others = [e for e in read_index(lib) if e.song != name]
    a = analysis or analyze(s)
    new: list[SampleEntry] = []
    try:
        _cut_song(s, lib, name, a, bars, one_shots, drum_stem, new)
    finally:  # also on a failure half-way (a full disk, Ctrl-C): the index lists exactly what is on disk
        lib.mkdir(parents=True, exist_ok=True)
        _write_index(lib, others + new)
    log.info("%s: %d samples of %s", lib, len(new), name)
    return new


def _cut_song(s: StemSet, lib: Path, name: str, a: SongAnalysis, bars: tuple[int, ...], one_shots: bool,
              drum_stem: str, new: list[SampleEntry]) -> None:
    """Write the loops (and one-shots) of one song, appending each entry to ``new`` once its file is written."""
    for sub in ("loops", "one-shots"):
        shutil.rmtree(lib / sub / name, ignore_errors=True)
    if a.tempo_bpm is None:
        raise LibraryError(f"{name}: no steady tempo ({a.tempo_note}): loops cannot be cut on a bar grid")
    bar_s = a.beats_per_bar * 60.0 / a.tempo_bpm
    bpm = round(a.tempo_bpm, 1)
    key_tag = _key_tag(a.key)
    first_bar = a.bar_at(a.downbeats[0]) if a.downbeats else 1
    for stem, audio in s.audio.items():
        for n in bars:
            for loop in cut_loops(audio, s.samplerate, a.downbeats, bar_s, n, first_bar):
                rel = Path("loops", name, f"{name}_{_slug(stem)}_{bpm:g}bpm_{key_tag}_bar{loop.bar:03d}_{n}bar.wav")
                t0 = loop.start / s.samplerate
                new.append(_write_sample(lib, rel, loop.audio, s.samplerate, loop.start, kind="loop", song=name,
                                         stem=stem, bpm=bpm, key=a.key, bar=loop.bar, bars=n,
                                         chords=_chords_between(a, t0, t0 + loop.audio.shape[1] / s.samplerate)))
    if one_shots:
        counts: dict[str, int] = {}
        for shot in extract_one_shots(s.audio[drum_stem], s.samplerate):
            counts[shot.kind] = counts.get(shot.kind, 0) + 1
            rel = Path("one-shots", name, f"{name}_{_slug(drum_stem)}_{shot.kind}_{counts[shot.kind]:03d}.wav")
            new.append(_write_sample(lib, rel, shot.audio, s.samplerate, shot.start, kind="one-shot", song=name,
                                     stem=drum_stem, bpm=bpm, key=a.key, drum_class=shot.kind))


MAX_LOOP_SAMPLE_S = 60.0  # a "save loop as sample" cut: a few bars, never a whole song


def add_loop_sample(audio: np.ndarray, samplerate: int, library: str | Path, *, song: str, stem: str,
                    start_s: float, end_s: float, bpm: float, key: str, bar: int | None = None,
                    bars: int | None = None) -> SampleEntry:
    """Cut ``[start_s, end_s)`` of ``audio`` ``(C, T)`` as a loop sample into ``library`` and add it to the index.

    The studio's "save loop as sample": both ends moved to the nearest zero crossing within 2 ms and 3 ms fades (as
    :func:`cut_loops`), written as 24-bit WAV under ``loops/<song>/`` with song, stem, BPM, key and start in the name;
    a sample of the same name is replaced. Returns its entry.
    """
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] == 0:
        raise LibraryError(f"loop sample: audio must be (channels, time) with samples, got shape {x.shape}")
    if not (np.isfinite(start_s) and np.isfinite(end_s)) or not 0 <= start_s < end_s:
        raise LibraryError(f"loop sample: start {start_s!r} s must be >= 0 and before end {end_s!r} s")
    if end_s - start_s > MAX_LOOP_SAMPLE_S:
        raise LibraryError(f"loop sample: {end_s - start_s:.1f} s is longer than {MAX_LOOP_SAMPLE_S:g} s")
    mono = x.mean(axis=0)
    radius = int(round(SNAP_S * samplerate))
    a = nearest_zero_crossing(mono, int(round(start_s * samplerate)), radius)
    b = min(x.shape[1], nearest_zero_crossing(mono, int(round(end_s * samplerate)), radius))
    if b - a < 2 * int(round(FADE_S * samplerate)) + 1:
        raise LibraryError(f"loop sample: {start_s:.3f}-{end_s:.3f} s is past the end of the audio or too short")
    cut = fade_ends(x[:, a:b], int(round(FADE_S * samplerate)))
    name, lib = _slug(song), Path(library)
    if lib.exists() and not lib.is_dir():
        raise LibraryError(f"{lib}: not a folder")
    bar_tag = f"bar{bar:03d}_{bars}bar" if bar is not None and bars is not None else f"at{int(round(start_s * 1000)):07d}ms"
    rel = Path("loops", name, f"{name}_{_slug(stem)}_{round(bpm, 1):g}bpm_{_key_tag(key)}_{bar_tag}.wav")
    entry = _write_sample(lib, rel, cut, samplerate, a, kind="loop", song=name, stem=stem, bpm=round(bpm, 1),
                          key=key, bar=bar, bars=bars)
    _write_index(lib, [e for e in read_index(lib) if e.path != entry.path] + [entry])
    return entry


def _same_key(a: str, b: Key) -> bool:
    k = parse_key(a)
    return (k.tonic, k.mode) == (b.tonic, b.mode)


def filter_entries(entries: Iterable[SampleEntry], *, bpm: float | None = None, bpm_tolerance: float = 0.02,
                   key: str | None = None, stem: str | None = None, kind: str | None = None,
                   drum_class: str | None = None, bars: int | None = None) -> list[SampleEntry]:
    """Entries matching every given filter. ``bpm`` matches within ``bpm_tolerance`` (relative) of the tempo or
    of its half or double (a 60 BPM loop fits a 120 BPM track); ``key`` is parsed as in ``"Am"``, ``"F# major"``."""
    want_key = parse_key(key) if key else None
    out = []
    for e in entries:
        if bpm is not None and not any(abs(e.bpm * m / bpm - 1) <= bpm_tolerance for m in (0.5, 1.0, 2.0)):
            continue
        if want_key is not None and not _same_key(e.key, want_key):
            continue
        if stem is not None and e.stem != stem:
            continue
        if kind is not None and e.kind != kind:
            continue
        if drum_class is not None and e.drum_class != drum_class:
            continue
        if bars is not None and e.bars != bars:
            continue
        out.append(e)
    return out


__all__ = ["BARS", "INDEX_NAME", "LibraryError", "SampleEntry", "build_library", "filter_entries", "read_index"]
