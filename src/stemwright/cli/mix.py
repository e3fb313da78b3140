"""``stemwright mix``: remix separated stems (presets, gains, mute/solo, pan, effects, loudness) into one file."""
from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer

from stemwright.cli import options
from stemwright.cli.common import USAGE_EXIT, fail, name_list, warn

if TYPE_CHECKING:  # imported lazily at run time so that 'stemwright --help' stays fast
    from stemwright.mixer.document import Mix
    from stemwright.mixer.stems import StemSet

def resolve_output(out: Path, fmt: Optional[str], overwrite: bool, bit_depth: int = 24,
                   mp3_bitrate: int = 320) -> tuple[Path, str]:
    """Output path and format from ``-o`` and ``--format`` (suffix added when missing), with the bit depth and
    bitrate checked for that format before any rendering; refuses to overwrite."""
    from stemwright.audio.io import WRITE_FORMATS, check_write_options

    suffix = out.suffix.lower().lstrip(".")
    if fmt is not None:
        fmt = fmt.lower()
        if fmt not in WRITE_FORMATS:
            fail(f"--format: unknown format {fmt!r} (choose {', '.join(WRITE_FORMATS)})", USAGE_EXIT)
        if suffix in WRITE_FORMATS and suffix != fmt:
            fail(f"--format {fmt} conflicts with the output name {out.name!r}", USAGE_EXIT)
        if suffix != fmt:
            out = out.with_name(out.name + "." + fmt)
    elif suffix in WRITE_FORMATS:
        fmt = suffix
    elif suffix:
        fail(f"{out}: cannot write .{suffix} files (use .wav, .flac or .mp3, or --format)", USAGE_EXIT)
    else:
        fmt, out = "wav", out.with_name(out.name + ".wav")
    try:
        check_write_options(fmt, bit_depth, mp3_bitrate)
    except ValueError as e:
        fail(str(e), USAGE_EXIT)
    if out.exists() and not overwrite:
        fail(f"{out}: already exists (use --overwrite to replace it)")
    return out, fmt


def describe_output(audio, samplerate: int) -> str:
    """``peak, true peak, integrated loudness`` of ``(C, T)`` audio, for the summary line."""
    import numpy as np

    from stemwright.mixer.loudness import integrated_lufs, true_peak_db

    peak = float(np.abs(audio).max()) if audio.size else 0.0
    peak_db = f"{20 * math.log10(peak):.2f} dBFS" if peak > 0 else "silent"
    parts = [f"peak {peak_db}", f"true peak {true_peak_db(audio):.2f} dBTP"]
    if audio.shape[1] > 0.4 * samplerate:
        parts.append(f"{integrated_lufs(audio, samplerate):.2f} LUFS")
    return ", ".join(parts)


def write_mix_audio(audio, samplerate: int, out: Path, fmt: str, bit_depth: int, mp3_bitrate: int,
                    overwrite: bool, clip_mode: str = "rescale") -> tuple[Any, str | None]:
    """Apply the clip policy (``rescale``: one gain so that nothing clips, the default; ``clamp``; ``none``) and
    write atomically. Returns the written audio and a line saying what the policy did (``None`` when nothing was
    over full scale);
    warns (never silently) when ``none`` leaves an integer or mp3 file clipping."""
    import numpy as np

    from stemwright.audio.io import AudioError, prepare_peaks, write_audio

    audio, report = prepare_peaks(audio, clip_mode)
    peak = report["peak"]
    note = None
    if peak > 1.0:
        over = f"the mix peaked at {20 * math.log10(peak):+.2f} dBFS"
        if clip_mode == "rescale":
            note = f"{over}; scaled by {-20 * math.log10(peak):.2f} dB so that it does not clip (--clip-mode)"
        elif clip_mode == "clamp":
            note = f"{over}; clamped to full scale (--clip-mode clamp)"
        elif fmt != "wav" or bit_depth != 32:
            warn(f"{over} and is clipped in the {fmt} file; use --clip-mode rescale, --loudness -14 or lower gains")
    try:
        write_audio(out, np.asarray(audio), samplerate, fmt=fmt, bit_depth=bit_depth, mp3_bitrate=mp3_bitrate,
                    overwrite=overwrite)
    except AudioError as e:
        fail(str(e))
    return audio, note


def command(
    stems_dir: Path = typer.Argument(..., help="Folder of stems: written by 'stemwright separate' or one audio file per stem."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output audio file (.wav, .flac, .mp3)."),
    preset: Optional[str] = typer.Option(
        None, "--preset", "-p",
        help="instrumental, acapella, karaoke[:guide|:DB], drumless, bassless, practice:STEM[:DB]."),
    gain: Optional[list[str]] = typer.Option(None, "--gain", help="STEM=DB[,STEM=DB...], e.g. vocals=-3,bass=+2 (or -inf)."),
    mute: Optional[list[str]] = typer.Option(None, "--mute", help="STEM[,STEM...] to silence."),
    solo: Optional[list[str]] = typer.Option(None, "--solo", help="STEM[,STEM...] to solo (only soloed stems play)."),
    pan: Optional[list[str]] = typer.Option(None, "--pan", help="STEM=PAN in [-1 (left), 1 (right)], e.g. other=-0.3."),
    invert: Optional[list[str]] = typer.Option(None, "--invert", help="STEM[,STEM...] to flip in polarity."),
    offset: Optional[list[str]] = typer.Option(None, "--offset", help="STEM=SECONDS time offset (negative = earlier)."),
    fx: Optional[list[str]] = typer.Option(
        None, "--fx", help="STEM=EFFECT(ARGS),... e.g. \"vocals=highpass(120),compressor(-18,3)\" (repeatable)."),
    master: Optional[list[str]] = typer.Option(None, "--master", help="Master chain, e.g. \"limiter(-1)\"."),
    layer: Optional[list[str]] = typer.Option(None, "--layer", help="Add a layer: FILE[@bar:N|@SECONDS][:gain=DB,pan=P,loop=N,program=P,soundfont=SF2], e.g. pad.wav@bar:5, bass.mid:program=38 (repeatable)."),
    master_gain: Optional[str] = typer.Option(None, "--master-gain", help="Master gain in dB (applied before the master chain)."),
    loudness: Optional[float] = typer.Option(None, "--loudness", help="Normalise to this integrated LUFS (true peak <= -1 dBTP)."),
    mix_file: Optional[Path] = typer.Option(None, "--mix-file", help="Start from this mix document (JSON, e.g. saved by the web mixer)."),
    save_mix: Optional[Path] = typer.Option(None, "--save-mix", help="Save the resulting mix document (JSON) here."),
    stem_names: Optional[str] = typer.Option(
        None, "--stems", help="Comma-separated stem files to use in a folder without stemwright.json (default: "
                              "the known stem names: vocals, drums, bass, other, guitar, piano, accompaniment, no_*)."),
    fmt: options.FileFormat = None,
    bit_depth: options.FileBitDepth = 24,
    mp3_bitrate: options.Mp3Bitrate = 320,
    clip_mode: options.FileClipMode = "rescale",  # type: ignore[assignment]
    overwrite: options.FileOverwrite = False,
) -> None:
    """Remix separated stems into one file.

    Order: --mix-file (or a neutral mix), then --preset, then the per-stem flags, then --loudness.
    """
    from stemwright.mixer.effects import MixError
    from stemwright.mixer.flags import FlagError, MixFlags, apply_flags, parse_gain_value
    from stemwright.mixer.presets import apply_preset
    from stemwright.mixer.render import render
    from stemwright.mixer.stems import load_stems

    if out is None and save_mix is None:
        fail("give an output file with -o OUT (and/or --save-mix mix.json)", USAGE_EXIT)
    if loudness is not None and not -70 <= loudness <= 0:
        fail(f"--loudness: must be in [-70, 0] LUFS, got {loudness:g}", USAGE_EXIT)
    target = resolve_output(out, fmt, overwrite, bit_depth, mp3_bitrate) if out is not None else None
    if save_mix is not None and save_mix.exists() and not overwrite:
        fail(f"{save_mix}: already exists (use --overwrite to replace it)")
    try:
        stems = load_stems(stems_dir, names=name_list(stem_names),
                           exclude=[p for p in (target[0] if target else None, save_mix) if p is not None])
    except MixError as e:
        fail(str(e))
    try:
        mix = _base_mix(mix_file, stems)
        mix.source = stems
        if preset:
            try:
                mix = apply_preset(mix, preset)
            except MixError as e:
                fail(str(e), USAGE_EXIT)
        mix = apply_flags(mix, MixFlags(gain or [], mute or [], solo or [], pan or [], invert or [], offset or [],
                                        fx or [], master or [], layer or []))
        if master_gain is not None:
            mix.master.gain_db = parse_gain_value(master_gain, "--master-gain", "master")
        if loudness is not None:
            mix.loudness_lufs = loudness
        mix.validate()
    except FlagError as e:
        fail(str(e), USAGE_EXIT)
    except MixError as e:
        fail(str(e))
    if save_mix is not None:
        try:
            mix.save(save_mix, overwrite=overwrite)
        except MixError as e:
            fail(str(e))
        print(f"mix document: {save_mix}")
    if target is None:
        return
    try:
        audio, info = render(mix, stems, return_info=True)
    except MixError as e:
        fail(str(e))
    path, fmt_ = target
    audio, note = write_mix_audio(audio, stems.samplerate, path, fmt_, bit_depth, mp3_bitrate, overwrite, clip_mode.value)
    playing = mix.audible()
    print(f"wrote {path} ({audio.shape[1] / stems.samplerate:.2f} s, {stems.samplerate} Hz, {audio.shape[0]} ch)")
    print(f"stems playing: {', '.join(playing) or 'none'}")
    print(describe_output(audio, stems.samplerate))
    if note:
        print(f"clip: {note}")


def _base_mix(mix_file: Optional[Path], stems: StemSet) -> Mix:
    from stemwright.mixer.document import Channel, Mix
    from stemwright.mixer.effects import MixError

    if mix_file is None:
        return Mix.from_stems(stems)
    mix = Mix.load(mix_file)
    unknown = [c.stem for c in mix.channels if c.stem not in stems.audio]
    if unknown:
        raise MixError(f"{mix_file}: stem {unknown[0]!r} is not in {stems.path} (stems: {', '.join(stems.names)})")
    for name in stems.names:
        if name not in mix.stems:
            logging.getLogger("stemwright.mixer").warning("%s has no channel for stem %r; it plays at 0 dB", mix_file, name)
            mix.channels.append(Channel(name))
    return mix
