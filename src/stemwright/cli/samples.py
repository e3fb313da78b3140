"""``stemwright samples``: a sample library (bar loops, drum one-shots, a searchable index) from separated stems."""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Optional

import typer

from stemwright.cli.common import USAGE_EXIT, fail


def _bars(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        fail(f"--bars must be a comma-separated list of 1, 2 and 4, got {text!r}", USAGE_EXIT)
    if not values or any(v not in (1, 2, 4) for v in values):
        fail(f"--bars must be a comma-separated list of 1, 2 and 4, got {text!r}", USAGE_EXIT)
    return values


def command(
    stems_dir: Optional[Path] = typer.Argument(None, help="Folder of stems ('stemwright separate' output or one audio file per stem)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Library folder (created; other songs in it are kept)."),
    bars: str = typer.Option("1,2,4", "--bars", help="Loop lengths in bars, comma-separated (1, 2, 4)."),
    one_shots: bool = typer.Option(False, "--one-shots", help="Also cut drum one-shots (kick, snare, hat, other) from the drums stem."),
    song: Optional[str] = typer.Option(None, "--song", help="Song name in file names (default: the folder's name)."),
    list_library: Optional[Path] = typer.Option(None, "--list", help="List (and filter) the samples of this library instead."),
    bpm: Optional[float] = typer.Option(None, "--bpm", help="--list: tempo within 2 % (or its half/double)."),
    key: Optional[str] = typer.Option(None, "--key", help="--list: key, e.g. Am, 'F# major'."),
    stem: Optional[str] = typer.Option(None, "--stem", help="--list: only this stem."),
    kind: Optional[str] = typer.Option(None, "--kind", help="--list: loop or one-shot."),
    drum_class: Optional[str] = typer.Option(None, "--class", help="--list: one-shot class (kick, snare, hat, other)."),
    as_json: bool = typer.Option(False, "--json", help="Print the samples as JSON."),
) -> None:
    """Build a sample library from a song's stems: bar-aligned 1/2/4-bar loops of every stem (named with song,
    stem, BPM, key and bar), drum one-shots with --one-shots, and an index (LIBRARY/index.json); or, with
    --list LIBRARY, search it by --bpm, --key, --stem, --kind and --class."""
    from stemwright.audio.io import AudioError
    from stemwright.mixer.effects import MixError
    from stemwright.samples.library import build_library, filter_entries, read_index

    if list_library is not None:
        if stems_dir is not None or out is not None:
            fail("--list takes only the library folder: give either STEMS_DIR -o LIBRARY or --list LIBRARY", USAGE_EXIT)
        if not list_library.is_dir():
            fail(f"{list_library}: library folder not found")
        if kind is not None and kind not in ("loop", "one-shot"):
            fail(f"--kind must be loop or one-shot, got {kind!r}", USAGE_EXIT)
        try:
            entries = filter_entries(read_index(list_library), bpm=bpm, key=key, stem=stem, kind=kind,
                                     drum_class=drum_class)
        except MixError as e:  # an unparsable --key
            fail(f"--key: {e}", USAGE_EXIT)
        except ValueError as e:
            fail(str(e))
        _print(entries, list_library, as_json)
        return
    if stems_dir is None or out is None:
        fail("give a stems folder and -o LIBRARY (or --list LIBRARY to search one)", USAGE_EXIT)
    if any(v is not None for v in (bpm, key, stem, kind, drum_class)):
        fail("--bpm, --key, --stem, --kind and --class filter --list", USAGE_EXIT)
    try:
        entries = build_library(stems_dir, out, song=song, bars=_bars(bars), one_shots=one_shots)
    except (MixError, AudioError, ValueError) as e:
        fail(str(e))
    if as_json:
        print(json.dumps([asdict(e) for e in entries], indent=1))
        return
    loops = [e for e in entries if e.kind == "loop"]
    shots = [e for e in entries if e.kind == "one-shot"]
    head = entries[0] if entries else None
    print(f"{out}: {len(loops)} loops" + (f", {len(shots)} one-shots" if one_shots else "")
          + (f" of {head.song} ({head.bpm:g} BPM, {head.key})" if head else " (every stem near-silent)"))
    if shots:
        counts = {c: sum(e.drum_class == c for e in shots) for c in ("kick", "snare", "hat", "other")}
        print("one-shots: " + ", ".join(f"{n} {c}" for c, n in counts.items()))


def _print(entries, library: Path, as_json: bool) -> None:
    if as_json:
        print(json.dumps([asdict(e) for e in entries], indent=1))
        return
    for e in entries:
        what = f"{e.bars} bar{'s' if e.bars != 1 else ''} from bar {e.bar}" if e.kind == "loop" else e.drum_class
        print(f"{library / e.path}  {e.stem:<8} {e.bpm:6.1f} BPM  {e.key:<9} {what}  {e.duration_s:.2f} s  "
              f"{e.rms_dbfs:.1f} dBFS")
    print(f"{len(entries)} sample(s)")
