"""The studio's drums panel (issue 27, "replace or reinforce the drums"): samples per class from an installed
Hydrogen kit or one-shots uploaded to the song, a blend, and "apply": :func:`stemwright.drums.render_replacement`
on the song's drums stem (loaded as the export loads the stems) in the bounded exports queue.

The replaced drums stem becomes a layer of the song (``server/layerfiles.py``, with the settings in its
``drums`` field): the page adds it as a strip and mutes the drums channel, so the mix document saves it (its
``layers``), the export renders it, and the panel's A/B switches between it and the original drums. One-shots are
kept in ``DATA_DIR/songs/ID/drums/<32 hex>.<ext>`` (sidecar ``.<32 hex>.json``: the user's file name).
"""
from __future__ import annotations

import asyncio
import json
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stemwright.atomic import atomic_write_text
from stemwright.server import layerfiles, remix
from stemwright.server.probe import ProbeError, probe_audio
from stemwright.server.studio import ApiError, Studio

CLASSES = ("kick", "snare", "hat")  # stemwright.drums.kit.REPLACEABLE (not imported: it loads the audio stack)
FROM_KIT = "kit"
SAMPLE_FILE = re.compile(r"^[0-9a-f]{32}\.(wav|flac|ogg)$")
MAX_SAMPLE_MB = 5
MAX_SAMPLE_S = 10.0  # stemwright.drums.kit.MAX_SAMPLE_S: a one-shot
MAX_SAMPLES = 32  # one-shots kept per song
DRUMS_MAX_S = remix.CLEAN_MAX_S  # the replacement holds the drums stem and its envelopes in memory


@dataclass(frozen=True, kw_only=True)
class DrumSettings:
    """The panel's choice: ``kit`` an installed Hydrogen kit (or None); per class ``"kit"`` (the kit's sample),
    a one-shot's file name, or None (the original hits stay); ``blend`` 1 replaces, less mixes in the original."""

    kit: str | None
    kick: str | None
    snare: str | None
    hat: str | None
    blend: float

    def to_dict(self) -> dict[str, Any]:
        return {"kit": self.kit, "kick": self.kick, "snare": self.snare, "hat": self.hat, "blend": self.blend}


def samples_dir(studio: Studio, song_id: str) -> Path:
    return studio.data_dir / "songs" / song_id / "drums"


def kit_names() -> list[str]:
    """Installed Hydrogen kits with a kick, a snare and a hat (loads the audio stack: call in a thread)."""
    from stemwright.drums import hydrogen_kits

    return list(hydrogen_kits())


def list_samples(folder: Path) -> list[dict[str, str]]:
    if not folder.is_dir():
        return []
    out = []
    for p in sorted(folder.iterdir()):
        if SAMPLE_FILE.match(p.name):
            try:
                out.append({"sample": p.name, "name": json.loads((folder / f".{p.stem}.json").read_text())["name"]})
            except (OSError, ValueError, KeyError):
                continue
    return out


def _check_sample(path: Path, filename: str) -> None:
    """A one-shot: a short, readable, not silent audio file; :class:`ApiError` naming the user's file."""
    from stemwright.drums.kit import KitError, read_sample

    shown = Path(filename).name[:120] or "the file"
    try:
        info = probe_audio(path, MAX_SAMPLE_S, name=filename)
        read_sample(path, info.samplerate)
    except ProbeError as e:
        raise ApiError(e.status, f"{shown}: {e.reason}") from None
    except KitError as e:
        raise ApiError(415, f"{shown}: {str(e).split(': ', 1)[-1]}") from None


async def add_sample(studio: Studio, song_id: str, path: Path, filename: str) -> dict[str, str]:
    """Store an uploaded one-shot for the song's drums panel."""
    song = await asyncio.to_thread(studio.song_or_404, song_id)
    ext = Path(filename).suffix.lower()
    if ext not in layerfiles.AUDIO_SUFFIXES:
        raise ApiError(415, f"{Path(filename).name[:120]}: a one-shot is a {', '.join(layerfiles.AUDIO_SUFFIXES)} file")
    folder = samples_dir(studio, song["id"])
    if len(await asyncio.to_thread(list_samples, folder)) >= MAX_SAMPLES:
        raise ApiError(409, f"this song keeps {MAX_SAMPLES} one-shots, the most it can")
    await asyncio.to_thread(_check_sample, path, filename)
    name = f"{uuid.uuid4().hex}{ext}"
    folder.mkdir(parents=True, exist_ok=True)
    entry = {"sample": name, "name": Path(filename).name[:120]}
    atomic_write_text(folder / f".{Path(name).stem}.json", json.dumps({"name": entry["name"]}))
    await asyncio.to_thread(path.replace, folder / name)
    return entry


def check_settings(settings: DrumSettings, kits: list[str], folder: Path) -> None:
    if settings.kit is not None and settings.kit not in kits:
        raise ApiError(400, f"'kit': {settings.kit[:60]!r} is not an installed Hydrogen kit "
                            f"({', '.join(kits) or 'none installed: apt install hydrogen-drumkits'})")
    chosen = {k: getattr(settings, k) for k in CLASSES if getattr(settings, k) is not None}
    if not chosen:
        raise ApiError(400, "'kick'/'snare'/'hat': choose a sample for at least one class")
    for kind, value in chosen.items():
        if value == FROM_KIT:
            if settings.kit is None:
                raise ApiError(400, f"'{kind}': \"kit\" needs a 'kit'")
        elif not SAMPLE_FILE.match(value) or not (folder / value).is_file():
            raise ApiError(400, f"'{kind}': {value[:60]!r} is not a one-shot uploaded to this song")
    if not 0.0 <= settings.blend <= 1.0:
        raise ApiError(400, f"'blend': must be in [0, 1], got {settings.blend:g}")


@dataclass(frozen=True)
class Replaced:
    """What :func:`render_drums` did: hits per class, and the licence of each class's sample taken from a Hydrogen
    kit (the samples end up in the user's track; an uploaded one-shot is the user's own and claims none)."""

    hits: dict[str, int]
    licences: dict[str, str]


def render_drums(stems: dict[str, Path], settings: DrumSettings, folder: Path, target: Path) -> Replaced:
    """The replaced drums stem of the stems folder (loaded as the export loads it) written to ``target`` (32-bit
    float WAV, as ``stemwright drums`` writes it)."""
    from stemwright.audio.io import write_audio  # heavy imports: runs in the exports queue's thread
    from stemwright.drums import Kit, hydrogen_kits, load_drum_kit, render_replacement
    from stemwright.mixer.stems import load_stems

    stemset = load_stems(next(iter(stems.values())).parent)
    sr = stemset.samplerate
    files = {k: folder / v for k in CLASSES if (v := getattr(settings, k)) not in (None, FROM_KIT)}
    kit_path = hydrogen_kits()[settings.kit] if settings.kit is not None else None
    loaded = load_drum_kit(sr, kit=kit_path, files=files, default_hydrogen=False)
    wanted = [k for k in CLASSES if getattr(settings, k) is not None]
    kit = Kit({k: loaded.samples[k] for k in wanted if k in loaded.samples},
              {k: loaded.sources[k] for k in wanted if k in loaded.sources}, sr,
              {k: loaded.licences[k] for k in wanted if k in loaded.licences})
    result = render_replacement(stemset["drums"], sr, kit, blend=settings.blend)
    write_audio(target, result.audio, sr, fmt="wav", bit_depth=32, overwrite=True)
    return Replaced(result.counts(), dict(result.licences))


async def apply(studio: Studio, song_id: str, settings: DrumSettings) -> dict[str, Any]:
    """Replace the song's drums with ``settings``; answers the new layer (as the layers route does), ``hits`` per
    class and ``licences`` (per class, of the samples taken from a Hydrogen kit)."""
    from stemwright.drums.kit import KitError  # (loads the audio stack)

    song, paths = await asyncio.to_thread(studio.song_stems, song_id)
    if "drums" not in paths:
        raise ApiError(409, f"this separation has no drums stem (stems: {', '.join(paths)})")
    if float(song["duration"] or 0) > DRUMS_MAX_S:
        raise ApiError(413, f"drum replacement works on songs of up to {DRUMS_MAX_S / 60:g} minutes")
    folder = samples_dir(studio, song["id"])
    kits = await asyncio.to_thread(kit_names) if settings.kit is not None else []
    await asyncio.to_thread(check_settings, settings, kits, folder)
    done: list[Replaced] = []

    async def place(target: Path) -> None:
        try:
            done.append(await studio.exports.run(render_drums, paths, settings, folder, target))
        except KitError as e:
            raise ApiError(422, f"drums: {e}") from None

    picked = "+".join(k for k in CLASSES if getattr(settings, k) is not None)
    layer = await remix.store_layer(studio, song["id"], paths, ".wav", place, kind="audio",
                                    name=f"drums ({picked}, blend {settings.blend:.2f})", drums=settings.to_dict())
    return {**layer, "hits": done[0].hits, "licences": done[0].licences}
