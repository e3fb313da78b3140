"""``stemwright drums``: replace or reinforce the drums of separated stems with your own samples."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from stemwright.cli.common import USAGE_EXIT, fail


def command(
    stems: Optional[Path] = typer.Argument(None, help="Folder of stems (its drums stem) or a drums audio file."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder: drums.wav, drums.hits.json, drums.mid, drums.json."),
    kick: Optional[Path] = typer.Option(None, "--kick", help="Kick sample (audio file)."),
    snare: Optional[Path] = typer.Option(None, "--snare", help="Snare sample."),
    hat: Optional[Path] = typer.Option(None, "--hat", help="Hi-hat sample (also replaces cymbal hits)."),
    kit: Optional[str] = typer.Option(None, "--kit", help="Folder of kick*/snare*/hat* samples, a Hydrogen kit folder or the name of an installed Hydrogen kit (default: the first installed one)."),
    blend: float = typer.Option(1.0, "--blend", help="1 = replace, 0.5 = reinforce (half new, half original), 0 = original."),
    humanize: bool = typer.Option(False, "--humanize", help="Spread the timing (2 ms) and level (1 dB) of the new hits."),
    seed: int = typer.Option(0, "--seed", help="Seed of --humanize."),
    min_level: float = typer.Option(-20.0, "--min-level", help="Hits quieter than this (dB under the loudest) are left as they are; -40 keeps ghost notes."),
    list_kits: bool = typer.Option(False, "--list-kits", help="List the installed Hydrogen kits and exit."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing output files."),
) -> None:
    """Find the drum hits (kick, snare, hat, other), trigger your samples on them aligned on the transient, with the
    hit's level; write the new drums stem, the hit list (JSON, MIDI) and a manifest. Other hits keep their sound."""
    from stemwright.audio.io import AudioError
    from stemwright.drums import KitError, hydrogen_kits, replace
    from stemwright.mixer.effects import MixError

    if list_kits:
        print("\n".join(hydrogen_kits()) or "no Hydrogen kit installed (apt install hydrogen-drumkits)")
        return
    if stems is None or out is None:
        fail("give the stems and an output folder: stemwright drums STEMS -o OUT", USAGE_EXIT)
    if not 0.0 <= blend <= 1.0:
        fail(f"--blend: must be in [0, 1], got {blend:g}", USAGE_EXIT)
    if not -80.0 <= min_level <= 0.0:
        fail(f"--min-level: must be in [-80, 0] dB, got {min_level:g}", USAGE_EXIT)
    if not stems.exists():
        fail(f"{stems}: not found")
    try:
        result = replace(stems, out, kick=kick, snare=snare, hat=hat, kit=kit, blend=blend, humanize=humanize,
                         seed=seed, min_level_db=min_level, overwrite=overwrite)
    except (KitError, MixError, AudioError) as e:
        fail(str(e))
    counts = ", ".join(f"{n} {k}" for k, n in sorted(result.counts().items())) or "no hits"
    print(f"{len(result.hits)} hits ({counts}); samples: "
          + ", ".join(f"{k}={Path(v).name}" for k, v in sorted(result.sources.items())))
    for licence in sorted(set(result.licences.values())):  # the user mixes these samples into their track
        print(f"licence of the kit's samples: {licence}")
    print(f"wrote {out}/drums.wav (blend {blend:g}), drums.hits.json, drums.mid, drums.json")
