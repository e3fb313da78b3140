"""The studio's producer tools that are not HTTP (issue 27): a strip's "clean" knob (the ``debleed`` effect of the
mix document) rendered server-side so the page plays exactly what the export writes; layers dropped onto the
mixer (stored by :mod:`stemwright.server.layerfiles`, played as the export reads them, placed on the export's grid).

The page cannot run the Wiener-style re-mask in Web Audio sample for sample, so a strip with clean > 0 plays a
cleaned copy of its stem made here by :func:`stemwright.mixer.render.clean_stem` (the export's own path), from the
stems loaded as the export loads them. Strengths are steps of :data:`CLEAN_STEP`, so a stem has at most
``1 / CLEAN_STEP`` cleaned copies; each is cached beside the stem and made again when a stem is newer. Cleaned stems
and layers are served as 32-bit float WAV, never clipped: the export does not clip a channel (a replaced drums stem
may peak above full scale and only the master's own chain decides), so the page must not either. Heavy imports happen inside the render (it runs in the exports queue's thread).
"""
from __future__ import annotations

import asyncio
import json
import math
import uuid
from pathlib import Path
from typing import Any, Awaitable, Callable

import numpy as np

from stemwright.atomic import atomic_write_text
from stemwright.errors import MixError
from stemwright.server import layerfiles
from stemwright.server.probe import ProbeError, probe_audio
from stemwright.server.studio import ApiError, Studio

CLEAN_STEP = 0.05  # the page's knob step; other strengths are refused, which bounds the cache to 20 files a stem
MAX_BAR = 10_000  # bar numbers a layer may be placed at (the studio takes songs of up to two hours)
CLEAN_MAX_S = 1200.0  # the re-mask holds STFTs of every stem in memory: 20 minutes of song at most


def clean_steps(strength: float) -> int:
    """The strength as a whole number of :data:`CLEAN_STEP` (1..20); :class:`ApiError` 400 otherwise."""
    steps = round(strength / CLEAN_STEP) if math.isfinite(strength) else -1
    if not 1 <= steps <= round(1 / CLEAN_STEP) or abs(steps * CLEAN_STEP - strength) > 1e-9:
        raise ApiError(400, f"'strength': must be a multiple of {CLEAN_STEP:g} in ({CLEAN_STEP:g}, 1] "
                            f"(0 is no cleaning), got {strength:g}")
    return steps


def clean_target(stem_path: Path, steps: int) -> Path:
    return stem_path.with_name(f".{stem_path.stem}.clean{steps:02d}.wav")


def fresh(target: Path, stems: dict[str, Path]) -> bool:
    """Whether a cached file is newer than every stem (a re-separation replaces the stems)."""
    return target.exists() and all(p.stat().st_mtime <= target.stat().st_mtime for p in stems.values())


def render_clean(stems: dict[str, Path], stem: str, steps: int, target: Path) -> Path:
    """Write ``stem`` cleaned at ``steps * CLEAN_STEP`` to ``target`` (float WAV: the export's samples exactly,
    unclipped) from the stems folder loaded exactly as the export loads it."""
    from stemwright.audio.io import write_audio  # heavy imports: the server starts without them
    from stemwright.mixer.render import clean_stem
    from stemwright.mixer.stems import load_stems

    folders = {p.parent for p in stems.values()}
    if len(folders) != 1:
        raise ValueError("stems of one song must share a folder")
    stemset = load_stems(folders.pop())
    audio = clean_stem(stemset, stem, round(steps * CLEAN_STEP, 10))
    return write_audio(target, audio, stemset.samplerate, fmt="wav", bit_depth=32, overwrite=True)


async def cleaned_stem(studio: Studio, song_id: str, stem: str, strength: float) -> Path:
    """The float WAV of the song's ``stem`` cleaned at ``strength`` (made through the bounded exports queue)."""
    song, paths = await asyncio.to_thread(studio.song_stems, song_id)
    if stem not in paths:
        raise ApiError(404, f"unknown stem {stem[:40]!r}; this song has {', '.join(paths)}")
    steps = clean_steps(strength)
    if len(paths) < 2:
        raise ApiError(409, "cleaning needs the other stems to clean against; this separation has one stem")
    if float(song["duration"] or 0) > CLEAN_MAX_S:
        raise ApiError(413, f"cleaning works on songs of up to {CLEAN_MAX_S / 60:g} minutes; this one has "
                            f"{float(song['duration']) / 60:.1f}")
    target = clean_target(paths[stem], steps)
    if not await asyncio.to_thread(fresh, target, paths):
        await studio.exports.run(render_clean, paths, stem, steps, target)
    return target


# -- layers (mix document v3): files dropped onto the mixer -------------------------------------------------------
def stems_rate(stems: dict[str, Path]) -> int:
    """The rate the stems folder renders at (``load_stems``: the most common rate of the stems)."""
    import soundfile as sf  # (the server starts without the audio stack)

    rates = [sf.info(str(p)).samplerate for p in stems.values()]
    return max(set(rates), key=rates.count)


def render_layer_play(stems: dict[str, Path], folder: Path, file: str, at: tuple[int, int] | None = None) -> float:
    """The audio the page plays for a stored layer, exactly as the export reads it (``load_layer_audio``: resampled
    to the stems' rate, or a MIDI file rendered by FluidSynth; a MIDI layer at bar/beat ``at`` on the export's
    grid), as float WAV beside it (unclipped, as the export mixes it); returns its seconds.
    Raises ``MixError`` (e.g. no FluidSynth, no grid)."""
    from stemwright.audio.io import write_audio  # heavy imports: the render runs in the exports queue's thread
    from stemwright.mixer.layers import Layer, load_layer_audio

    rate = stems_rate(stems)
    layer = Layer(file=file, at=None if at is None else f"bar:{at[0]}.{at[1]}")
    audio = load_layer_audio(layer, folder, rate, "layer", None if at is None else grid_rhythm(stems))
    write_audio(layerfiles.play_path(folder, file, at), audio, rate, fmt="wav", bit_depth=32, overwrite=True)
    for old in layerfiles.grid_plays(folder, file)[:-layerfiles.MAX_GRID_PLAYS]:
        old.unlink(missing_ok=True)
    return audio.shape[1] / rate


def _check_layer_upload(path: Path, filename: str, size: int) -> str:
    """The kind of an uploaded layer ("audio" or "midi") after a bounded check; :class:`ApiError` otherwise."""
    shown = Path(filename).name[:120] or "the file"
    ext = Path(filename).suffix.lower()
    if ext in layerfiles.MIDI_SUFFIXES:
        if size > layerfiles.MAX_MIDI_BYTES:
            raise ApiError(413, f"{shown}: a MIDI layer is at most {layerfiles.MAX_MIDI_BYTES // 1024} kB")
        from stemwright.mixer.layers import midi_available, midi_seconds  # (loads the mixer)

        if not midi_available():
            raise ApiError(422, f"{shown}: MIDI layers need the [synth] extra (pip install 'stemwright[synth]') "
                                "and FluidSynth (apt install fluidsynth fluid-soundfont-gm)")
        try:
            seconds = midi_seconds(path)
        except MixError:
            raise ApiError(415, f"{shown}: not a readable MIDI file") from None
        if seconds > layerfiles.MAX_LAYER_S:
            raise ApiError(413, f"{shown}: plays {seconds:.0f} s; a layer is at most {layerfiles.MAX_LAYER_S:g} s")
        return "midi"
    if ext not in layerfiles.AUDIO_SUFFIXES:
        raise ApiError(415, f"{shown}: a layer is an audio file ({', '.join(layerfiles.AUDIO_SUFFIXES)}) or a "
                            "MIDI file (.mid)")
    try:
        probe_audio(path, layerfiles.MAX_LAYER_S, name=filename)
    except ProbeError as e:
        raise ApiError(e.status, f"{shown}: {e.reason}") from None
    return "audio"


async def add_layer(studio: Studio, song_id: str, path: Path, size: int, filename: str) -> dict[str, Any]:
    """Store an uploaded layer for the song (checked, then made playable); its :class:`LayerInfo` and ``href``."""
    song, paths = await asyncio.to_thread(studio.song_stems, song_id)
    kind = await asyncio.to_thread(_check_layer_upload, path, filename, size)
    ext = ".mid" if kind == "midi" else Path(filename).suffix.lower()
    return await store_layer(studio, song["id"], paths, ext, lambda target: asyncio.to_thread(path.replace, target),
                             name=Path(filename).name[:120], kind=kind)


async def store_layer(studio: Studio, song_id: str, stems: dict[str, Path], ext: str,
                      place: Callable[[Path], Awaitable[Any]], *, name: str, kind: str,
                      drums: dict[str, Any] | None = None) -> dict[str, Any]:
    """A new layer file of the song: ``place(target)`` puts it there, then the page's audio is made and its
    :class:`LayerInfo` written; on any failure nothing is left behind. Answers the info and ``href``."""
    folder = studio.layers_dir(song_id)
    if len(await asyncio.to_thread(layerfiles.stored_layers, folder)) >= layerfiles.MAX_LAYER_FILES:
        raise ApiError(409, f"this song keeps {layerfiles.MAX_LAYER_FILES} layer files, the most it can")
    file = f"{uuid.uuid4().hex}{ext}"
    folder.mkdir(parents=True, exist_ok=True)
    try:
        await place(folder / file)
        duration = await studio.exports.run(render_layer_play, stems, folder, file)
        info = layerfiles.LayerInfo(file=file, name=name, kind=kind, duration=duration, drums=drums)
        await asyncio.to_thread(layerfiles.write_info, folder, info)
    except BaseException as e:
        for p in (folder / file, layerfiles.play_path(folder, file), layerfiles.info_path(folder, file)):
            p.unlink(missing_ok=True)
        if isinstance(e, MixError):  # e.g. MIDI without FluidSynth or a soundfont: the message says what to install
            raise ApiError(422, f"{name}: {e}") from None
        raise
    return {**info.to_dict(), "href": f"/api/songs/{song_id}/layers/{file}"}


def list_layers(studio: Studio, song_id: str) -> list[dict[str, Any]]:
    song_id = studio.song_or_404(song_id)["id"]
    return [{**x.to_dict(), "href": f"/api/songs/{song_id}/layers/{x.file}"}
            for x in layerfiles.stored_layers(studio.layers_dir(song_id))]


def _bar_beat(at: str | None, file: str) -> tuple[int, int] | None:
    """``at`` ("bar:N[.B]") for a MIDI layer, which plays on the grid from there; None for audio, which does not
    depend on where it starts. :class:`ApiError` 400 for a malformed or far-off position."""
    if at is None or Path(file).suffix.lower() not in layerfiles.MIDI_SUFFIXES:
        return None
    from stemwright.mixer.layers import parse_at  # (loads the mixer)

    try:
        bar, beat = parse_at(at, "at")
    except MixError as e:
        raise ApiError(400, str(e)) from None
    if bar > MAX_BAR or beat > 16:
        raise ApiError(400, f"'at': bar {bar} beat {beat} is past the longest song the studio takes")
    return bar, beat


async def layer_audio(studio: Studio, song_id: str, file: str, at: str | None = None) -> Path:
    """The float WAV the page plays for the song's stored layer ``file`` (a MIDI layer: as placed ``at`` a bar, on
    the export's grid); made when missing (a layer stored before the page's audio was float WAV has only the
    older, clipped FLAC)."""
    song, paths = await asyncio.to_thread(studio.song_stems, song_id)
    folder = studio.layers_dir(song["id"])
    if await asyncio.to_thread(layerfiles.read_info, folder, file) is None:
        raise ApiError(404, f"no layer {file[:60]!r} in this song")
    bar_beat = _bar_beat(at, file)
    target = layerfiles.play_path(folder, file, bar_beat)
    if not target.is_file():
        try:
            await studio.exports.run(render_layer_play, paths, folder, file, bar_beat)
        except MixError as e:  # e.g. FluidSynth removed since the MIDI layer was stored
            raise ApiError(422, f"{file}: {e}") from None
    return target


def grid_of(stems: dict[str, Path]) -> dict[str, Any]:
    """The grid the export places ``at: "bar:N"`` layers on (``mixer.render.layer_grid`` over the stems loaded as
    the export loads them), cached beside the stems; ``{"grid": null, "reason"}`` when there is none. ``beats``
    is null for a constant tempo, else the beat times of a changing one (``Rhythm.grid``)."""
    from stemwright.mixer.render import layer_grid  # heavy imports: runs in the exports queue's thread
    from stemwright.mixer.stems import load_stems

    folder = next(iter(stems.values())).parent
    cache = folder / ".layer-grid2.json"  # 2: with "beats" (the first cache had only a constant tempo)
    if fresh(cache, stems):
        return json.loads(cache.read_text())
    try:
        rhythm = layer_grid(load_stems(folder))
        beats = None if rhythm.grid is None else [float(b) for b in rhythm.grid]
        grid: dict[str, Any] = {"grid": {"tempo": rhythm.tempo, "downbeat": rhythm.downbeat,
                                         "beats_per_bar": rhythm.beats_per_bar, "beats": beats}}
    except MixError as e:
        grid = {"grid": None, "reason": str(e)}
    atomic_write_text(cache, json.dumps(grid))
    return grid


def grid_rhythm(stems: dict[str, Path]) -> Any:
    """:func:`grid_of` as a ``Rhythm`` (the same floats: JSON keeps them exactly); ``MixError`` when there is none."""
    from stemwright.mixer.analysis import Rhythm  # (loads the mixer)

    found = grid_of(stems)
    g = found["grid"]
    if g is None:
        raise MixError(f"this song has no beat grid to place a MIDI layer on ({found['reason']})")
    beats = None if g["beats"] is None else np.array(g["beats"])
    return Rhythm(g["tempo"], np.array([] if beats is None else beats), g["downbeat"], g["beats_per_bar"], grid=beats)


async def layer_grid(studio: Studio, song_id: str) -> dict[str, Any]:
    _song, paths = await asyncio.to_thread(studio.song_stems, song_id)
    return await studio.exports.run(grid_of, paths)
