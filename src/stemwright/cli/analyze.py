"""``stemwright analyze``: tempo, beats, downbeats, time signature, key and chords of a song, from its stems."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from stemwright.cli.common import fail, need_extra


def _tempo_line(result) -> str:
    if result.tempo_bpm is None:
        return (f"tempo   no steady tempo: {result.tempo_note} (about {result.mean_bpm:.0f} BPM on average; "
                f"{len(result.beats)} beats from {'+'.join(result.rhythm_stems)})")
    octave = "" if not result.octave_uncertain else (
        f"; octave uncertain: or {' / '.join(f'{b:.2f}' for b in result.tempo_alternatives)} (half / double time)")
    return (f"tempo   {result.tempo_bpm:.2f} BPM (confidence {result.tempo_confidence:.2f}{octave}; "
            f"{len(result.beats)} beats from {'+'.join(result.rhythm_stems)})")


def command(
    path: Path = typer.Argument(..., help="Folder of stems ('stemwright separate' output or one audio file per stem), or one audio file."),
    as_json: bool = typer.Option(False, "--json", help="Print the analysis as JSON (beat, downbeat and chord times included)."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Also draw the waveform with beats, downbeats and chords to this PNG."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --plot file."),
) -> None:
    """Analyse a song once: tempo (or "no steady tempo"), beat and downbeat times, time signature, key and mode,
    chords, each with a confidence. Beats come from the drums and bass stems, key and chords from the harmonic
    stems (bass for the roots), where the folder has them."""
    from stemwright.analysis.song import analyze, load_path
    from stemwright.audio.io import AudioError
    from stemwright.mixer.effects import MixError

    if not path.exists():
        fail(f"{path}: not found")
    if plot is not None:
        need_extra("matplotlib", "plot", "--plot")
        if plot.exists() and not overwrite:
            fail(f"{plot}: already exists (use --overwrite to replace it)")
    try:
        stems = load_path(path)
        result = analyze(stems)
        if plot is not None:
            from stemwright.analysis.plot import plot_analysis  # lazy: matplotlib only for --plot

            plot_analysis(stems, result, plot, overwrite=overwrite)
    except (MixError, AudioError) as e:
        fail(str(e))
    if as_json:
        print(json.dumps({"path": str(path), **result.to_dict()}, indent=2))
        return
    print(f"{path}")
    print(_tempo_line(result))
    print(f"meter   {result.time_signature} (confidence {result.meter_confidence:.2f}); first downbeat "
          f"{result.first_downbeat:.3f} s (confidence {result.downbeat_confidence:.2f}), {len(result.downbeats)} bars")
    alts = ", ".join(f"{k} {w:.2f}" for k, w in result.key_alternatives[1:3])
    print(f"key     {result.key} (confidence {result.key_confidence:.2f}; then {alts}; "
          f"from {'+'.join(result.harmonic_stems)})")
    names = [c.name for c in result.chords]
    print(f"chords  {len(names)}: {' '.join(names[:16])}{' ...' if len(names) > 16 else ''}")
