"""Write generated songs to disk in the MUSDB18 layout: :func:`generate_dataset`.

``OUT/<song>/{mixture,drums,bass,other,vocals}.wav`` (44.1 kHz stereo 32-bit float, so the mixture equals the sum
of the stems to float precision; no ``vocals.wav`` for songs made with ``vocals=False``) + ``OUT/<song>/song.json`` (+ ``song.mid`` with ``midi=True``).
Each song is written into a hidden temporary folder beside it and renamed into place when complete, so an
interrupted run never leaves a half-written song under its final name.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile as sf
from tqdm import tqdm

from stemwright.errors import StemwrightError
from stemwright.synth.bus import BusOptions
from stemwright.synth.resources import Resources, find_resources
from stemwright.synth.song import SPLIT_STEMS, STEMS, SynthSong, generate_song
from stemwright.synth.vocals import DEFAULT_MIR1K_DIR

log = logging.getLogger(__name__)

FILES = ("mixture",) + STEMS[:2] + SPLIT_STEMS + STEMS[2:]


class SongExistsError(StemwrightError):
    """Songs already exist in the output folder and neither overwrite nor skip_existing was asked."""


@dataclass(frozen=True)
class SongJob:
    index: int
    seed: int
    name: str


def song_seed(dataset_seed: int, index: int) -> int:
    """The seed of song ``index`` of a dataset: independent streams per song (numpy SeedSequence)."""
    return int(np.random.SeedSequence([dataset_seed, index]).generate_state(1)[0])


def song_name(dataset_seed: int, index: int) -> str:
    return f"synth-s{dataset_seed}-{index:05d}"


def write_song(song: SynthSong, folder: Path, overwrite: bool = False, midi: bool = False) -> Path:
    """Write one song atomically into ``folder`` (created). Returns the folder."""
    folder = Path(folder)
    if folder.exists() and not overwrite:
        raise SongExistsError(f"{folder}: already exists (use --overwrite to replace it)")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".part", dir=folder.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes 0700; the song folder gets ordinary permissions
    try:
        arrays = {"mixture": song.mixture, **song.stems}
        for name in (n for n in FILES if n in arrays):
            sf.write(str(tmp / f"{name}.wav"), arrays[name].T, song.samplerate, subtype="FLOAT", format="WAV")
        (tmp / "song.json").write_text(json.dumps(song.metadata, indent=1, ensure_ascii=False) + "\n")
        if midi:
            song.midi.write(str(tmp / "song.mid"))
        if folder.exists():  # overwrite: move the old song aside first so the swap is quick
            old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".old", dir=folder.parent))
            os.replace(folder, old / folder.name)
            os.replace(tmp, folder)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def _work(
    job: SongJob,
    out_dir: str,
    seconds: float,
    dataset_seed: int,
    mir1k_dir: str | None,
    resources: Resources,
    overwrite: bool,
    midi: bool,
    style: str | None,
    vocals: bool = True,
    split_instruments: bool = False,
    bus_options: BusOptions = BusOptions(),
) -> dict:
    t0 = time.perf_counter()
    song = generate_song(
        job.seed,
        seconds,
        mir1k_dir=mir1k_dir,
        resources=resources,
        name=job.name,
        style=style,
        vocals=vocals,
        split_instruments=split_instruments,
        bus_options=bus_options,
    )
    song.metadata["dataset"] = {"seed": dataset_seed, "index": job.index}
    write_song(song, Path(out_dir) / job.name, overwrite=overwrite, midi=midi)
    m = song.metadata
    return {
        "name": job.name,
        "style": m["style"],
        "tempo_bpm": m["tempo_bpm"],
        "key": f"{m['key']} {m['mode']}",
        "vocals": m["stems"]["vocals"]["source"] if vocals else None,
        "seconds_taken": time.perf_counter() - t0,
    }


def generate_dataset(
    out_dir: str | Path,
    songs: int,
    seconds: float,
    seed: int = 0,
    jobs: int = 1,
    *,
    mir1k_dir: str | Path | None = DEFAULT_MIR1K_DIR,
    overwrite: bool = False,
    skip_existing: bool = False,
    midi: bool = False,
    style: str | None = None,
    progress: bool | Callable[[int, int, dict], None] = True,
    start: int = 0,
    vocals: bool = True,
    split_instruments: bool = False,
    bus_options: BusOptions = BusOptions(),
) -> list[dict]:
    """Generate songs ``start .. start+songs-1`` of dataset ``seed`` into ``out_dir`` with ``jobs`` processes.

    The same (seed, index) always gives the same song, whatever ``jobs``. Existing songs raise
    :class:`SongExistsError` unless ``overwrite`` (replace) or ``skip_existing`` (keep, generate only the missing).
    ``progress``: True for a tqdm bar, False for none, or a callback ``(done, total, summary)``.
    ``vocals=False``: songs without vocals (drums, bass, other; ``mir1k_dir`` unused), e.g. for instrument splitters.
    ``split_instruments=True``: guitar and piano parts in ``guitar.wav`` and ``piano.wav`` instead of ``other.wav``.
    ``bus_options``: production across stems (:mod:`stemwright.synth.bus`; none by default).
    Returns one summary dict per generated song (name, style, tempo, key, vocals, seconds taken).
    """
    if songs < 1:
        raise ValueError(f"songs must be at least 1, got {songs}")
    if not seconds > 0:
        raise ValueError(f"seconds must be positive, got {seconds}")
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    resources = find_resources()  # fail early, naming the missing Debian packages
    out = Path(out_dir)
    todo = [SongJob(i, song_seed(seed, i), song_name(seed, i)) for i in range(start, start + songs)]
    existing = [j.name for j in todo if (out / j.name).exists()]
    if existing and not (overwrite or skip_existing):
        more = f" and {len(existing) - 3} more" if len(existing) > 3 else ""
        raise SongExistsError(
            f"{out}: song(s) {', '.join(existing[:3])}{more} already exist "
            "(use --overwrite to replace them or --skip-existing to keep them)"
        )
    if skip_existing and not overwrite:
        todo = [j for j in todo if j.name not in existing]
    out.mkdir(parents=True, exist_ok=True)
    mir = str(mir1k_dir) if mir1k_dir is not None and vocals else None
    if mir is not None and not Path(mir).is_dir():
        log.warning("MIR-1K train folder %s not found: lead vocals will be GM voice programs", mir1k_dir)
    args = (str(out), seconds, seed, mir, resources, overwrite, midi, style, vocals, split_instruments, bus_options)
    bar = None
    if progress is True:
        bar = tqdm(total=len(todo), unit="song", desc="synth")
    results: list[dict] = []

    def done(summary: dict) -> None:
        results.append(summary)
        if bar is not None:
            bar.update(1)
            bar.set_postfix_str(f"{summary['name']} {summary['style']}")
        elif callable(progress):
            progress(len(results), len(todo), summary)

    try:
        if jobs == 1 or len(todo) <= 1:
            for job in todo:
                done(_work(job, *args))
        else:
            # spawn: workers start clean (no FluidSynth state or threads inherited from the parent).
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=min(jobs, len(todo)), mp_context=ctx) as pool:
                futures = [pool.submit(_work, job, *args) for job in todo]
                for fut in as_completed(futures):
                    done(fut.result())
    finally:
        if bar is not None:
            bar.close()
    return sorted(results, key=lambda r: r["name"])
