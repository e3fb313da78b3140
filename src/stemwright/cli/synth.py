"""``stemwright synth``: generate synthetic multitrack songs (MUSDB18 layout) for training."""

from __future__ import annotations

import time
from pathlib import Path

import typer


def command(
    out: Path = typer.Option(
        ..., "-o", "--out", help="Output folder; songs go to OUT/<song>/{mixture,drums,bass,other,vocals}.wav."
    ),
    songs: int = typer.Option(10, "--songs", "-n", min=1, help="Number of songs."),
    seconds: float = typer.Option(30.0, "--seconds", "-s", min=0.5, help="Length of each song in seconds."),
    seed: int = typer.Option(0, "--seed", help="Dataset seed: the same seed gives the same songs."),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, help="Parallel worker processes."),
    start: int = typer.Option(0, "--start", min=0, help="Index of the first song (to extend a dataset later)."),
    style: str = typer.Option(
        None, "--style", help="Only this style (rock, pop, funk, hip-hop, electronic, jazz, ballad)."
    ),
    mir1k_dir: Path = typer.Option(
        None,
        "--mir1k-dir",
        help="MIR-1K train clips for real vocals (default: ../shared/data/mir1k/train beside the repository).",
    ),
    no_mir1k: bool = typer.Option(False, "--no-mir1k", help="Vocals only from GM choir/voice programs."),
    no_vocals: bool = typer.Option(
        False, "--no-vocals", help="Instrumental songs: no vocals stem at all (drums, bass, other; no MIR-1K)."
    ),
    six_stems: bool = typer.Option(
        False, "--six-stems", help="Guitar and piano parts in guitar.wav / piano.wav of their own, not in other.wav."
    ),
    production: str = typer.Option(
        "none", "--production", metavar="LIST",
        help="Production across stems: all, none, or a comma list of parallel, sidechain, send, bus_comp, widen, "
        "master, and mp3 or aac (a lossy round trip of the mixture only). 'all' = every one with mp3.",
    ),
    midi: bool = typer.Option(False, "--midi", help="Also write each song's MIDI (song.mid)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace songs that already exist."),
    skip_existing: bool = typer.Option(
        False, "--skip-existing", help="Keep existing songs, generate only the missing ones."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Generate synthetic songs stem by stem (FluidSynth GM soundfonts, Hydrogen drum kits, MIR-1K vocals)."""
    from stemwright.atomic import check_writable_folder
    from stemwright.cli.common import USAGE_EXIT, fail
    from stemwright.errors import OutputError
    from stemwright.synth import DEFAULT_MIR1K_DIR, MissingPackageError, SongExistsError, generate_dataset
    from stemwright.synth.bus import BusOptionError, BusOptions
    from stemwright.synth.compose import STYLES

    if style is not None and style not in STYLES:
        fail(f"--style must be one of {', '.join(STYLES)}, got {style!r}", USAGE_EXIT)
    try:
        bus_options = BusOptions.parse(production)
    except BusOptionError as e:
        fail(f"--production: {e}", USAGE_EXIT)
    folder = None if no_mir1k else (mir1k_dir or DEFAULT_MIR1K_DIR)
    if no_vocals and (no_mir1k or mir1k_dir is not None):
        fail("--no-vocals cannot be combined with --no-mir1k or --mir1k-dir", USAGE_EXIT)
    if mir1k_dir is not None and not mir1k_dir.is_dir():
        fail(f"{mir1k_dir}: MIR-1K folder not found")
    try:
        check_writable_folder(out)  # before any song is rendered
    except OutputError as e:
        fail(str(e))
    t0 = time.perf_counter()
    try:
        results = generate_dataset(
            out,
            songs,
            seconds,
            seed=seed,
            jobs=jobs,
            mir1k_dir=folder,
            overwrite=overwrite,
            skip_existing=skip_existing,
            midi=midi,
            style=style,
            progress=not quiet,
            start=start,
            vocals=not no_vocals,
            split_instruments=six_stems,
            bus_options=bus_options,
        )
    except (MissingPackageError, SongExistsError, ValueError) as e:
        fail(str(e))
    except OSError as e:  # a disk that fills up or turns read-only during the run
        fail(f"{e.filename or out}: could not write ({e.strerror or e})")
    elapsed = time.perf_counter() - t0
    rate = len(results) / elapsed * 60 if elapsed > 0 else float("inf")
    print(
        f"{len(results)} song(s) of {seconds:g} s written to {out} in {elapsed:.1f} s "
        f"({rate:.1f} songs/min, {len(results) * seconds / elapsed:.1f}x real time, {jobs} job(s))"
    )
