"""``stemwright mashup``: the vocals of one separated song over the backing of another."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from stemwright.cli.common import USAGE_EXIT, fail
from stemwright.cli import options
from stemwright.cli.mix import describe_output, resolve_output, write_mix_audio


def command(
    vocals: Path = typer.Option(..., "--vocals", help="Stems folder of song A (its vocal stem is used)."),
    backing: Path = typer.Option(..., "--backing", help="Stems folder of song B (every stem but vocals is used)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output audio file (.wav, .flac, .mp3)."),
    vocal_stem: str = typer.Option("vocals", "--vocal-stem", help="Name of the vocal stem in both folders."),
    vocals_tempo: Optional[float] = typer.Option(None, "--vocals-tempo", help="Song A's tempo in BPM (skip estimation)."),
    backing_tempo: Optional[float] = typer.Option(None, "--backing-tempo", help="Song B's tempo in BPM (skip estimation)."),
    vocals_key: Optional[str] = typer.Option(None, "--vocals-key", help="Song A's key, e.g. 'A minor', 'F#', 'Bbm'."),
    backing_key: Optional[str] = typer.Option(None, "--backing-key", help="Song B's key."),
    semitones: Optional[int] = typer.Option(None, "--semitones", help="Pitch shift of the vocal (overrides the key match)."),
    offset: Optional[float] = typer.Option(None, "--offset", help="Start of the vocal in the backing, seconds (overrides the downbeat alignment)."),
    no_stretch: bool = typer.Option(False, "--no-stretch", help="Keep the vocal's tempo."),
    vocals_gain: float = typer.Option(0.0, "--vocals-gain", help="Vocal level in dB."),
    backing_gain: float = typer.Option(0.0, "--backing-gain", help="Backing level in dB."),
    loudness: Optional[float] = typer.Option(None, "--loudness", help="Normalise to this integrated LUFS (true peak <= -1 dBTP)."),
    fmt: options.FileFormat = None,
    bit_depth: options.FileBitDepth = 24,
    mp3_bitrate: options.Mp3Bitrate = 320,
    clip_mode: options.FileClipMode = "rescale",  # type: ignore[assignment]
    as_json: bool = typer.Option(False, "--json", help="Print the plan as JSON."),
    overwrite: options.FileOverwrite = False,
) -> None:
    """Put the vocals of song A over the backing of song B: tempo and key matched, first downbeats aligned."""
    from stemwright.mixer.analysis import parse_key
    from stemwright.mixer.document import parse_gain
    from stemwright.mixer.effects import MixError
    from stemwright.mixer.mashup import mashup
    from stemwright.mixer.stems import load_stems

    path, fmt_ = resolve_output(out, fmt, overwrite, bit_depth, mp3_bitrate)
    try:
        keys = {"vocals_key": parse_key(vocals_key) if vocals_key else None,
                "backing_key": parse_key(backing_key) if backing_key else None}
        gains = (parse_gain(vocals_gain, "--vocals-gain"), parse_gain(backing_gain, "--backing-gain"))
        for flag, bpm in (("--vocals-tempo", vocals_tempo), ("--backing-tempo", backing_tempo)):
            if bpm is not None and not 20 <= bpm <= 400:
                raise MixError(f"{flag}: tempo must be in [20, 400] BPM, got {bpm:g}")
        if semitones is not None and not -12 <= semitones <= 12:
            raise MixError(f"--semitones: must be in [-12, 12], got {semitones}")
        if loudness is not None and not -70 <= loudness <= 0:
            raise MixError(f"--loudness: must be in [-70, 0] LUFS, got {loudness:g}")
    except MixError as e:
        fail(str(e), USAGE_EXIT)
    try:
        a, b = load_stems(vocals), load_stems(backing)
        result = mashup(
            a, b, vocal_stem, vocals_gain_db=gains[0], backing_gain_db=gains[1], loudness_lufs=loudness,
            vocals_tempo=vocals_tempo, backing_tempo=backing_tempo, semitones=semitones, offset_s=offset,
            stretch=not no_stretch, **keys,
        )
    except MixError as e:
        fail(str(e))
    audio, note = write_mix_audio(result.audio, result.samplerate, path, fmt_, bit_depth, mp3_bitrate, overwrite,
                                  clip_mode.value)
    if as_json:
        print(json.dumps({"output": str(path), **result.plan.to_dict(), "clip": note}, indent=2))
        return
    print(result.plan.describe())
    print(f"wrote {path} ({audio.shape[1] / result.samplerate:.2f} s): {describe_output(audio, result.samplerate)}")
    if note:
        print(f"clip: {note}")
