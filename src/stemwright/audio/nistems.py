"""NI Stems (``.stem.mp4``): one MP4 holding the mixture and four stems, as Traktor, Mixxx and other DJ software read.

Layout (Native Instruments' Stems format, as written by NI's Stem Creator and read by Mixxx's ``SoundSourceSTEM``):

- five AAC (or ALAC) audio tracks: track 1 the mixture (the only *enabled* track, so an ordinary player plays the
  song), tracks 2-5 the stems in the order of the metadata (drums, bass, other, vocals by convention);
- an ``M4A`` file type (``ftyp`` major brand), which FFmpeg's ``ipod`` muxer writes;
- the JSON metadata in a ``stem`` box inside ``moov/udta``: ``{"version": 1, "stems": [{"name", "color"} x 4],
  "mastering_dsp": {"compressor": {...}, "limiter": {...}}}``. FFmpeg and PyAV cannot write that box, so
  :func:`add_stem_box` appends it to the finished file (the ``moov`` box FFmpeg writes after ``mdat``, so growing
  it moves no sample data and no chunk offset changes).

Stem folders with more than the four NI slots are grouped: every stem that is not drums, bass or vocals
(guitar, piano, ...) is summed into "other"; anything that cannot fill the four slots is refused with the reason.
"""
from __future__ import annotations

import json
import logging
import os
import struct
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

import av
import numpy as np

from stemwright.atomic import atomic_write
from stemwright.audio.io import AudioError, audio_stream_count, prepare_peaks_many, read_audio
from stemwright.errors import StemwrightError

log = logging.getLogger(__name__)

NI_SLOTS = ("drums", "bass", "other", "vocals")
# Colours of NI's default stem template (the Okabe-Ito colour-blind-safe palette), as in NI Stem Creator files.
NI_COLOURS = {"drums": "#009E73", "bass": "#D55E00", "other": "#CC79A7", "vocals": "#56B4E9"}
CODECS = ("aac", "alac")
DEFAULT_BITRATE = 256_000  # the bit rate of NI's own Stems releases
AAC_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000)
BLOCK = 1024  # samples per frame given to the encoders: the AAC frame size, so the last frame carries the exact remainder


class NiStemsError(StemwrightError):
    """Stems that cannot become an NI Stems file, or a file that is not one."""


@dataclass(frozen=True, kw_only=True)
class Compressor:
    """The mastering compressor of the NI metadata (Traktor applies it to the sum of the stems when enabled).
    Defaults: NI Stem Creator's template, disabled, so the stems play unprocessed."""

    enabled: bool = False
    input_gain: float = 0.5
    output_gain: float = 0.5
    threshold: float = 0.0
    dry_wet: float = 50.0
    attack: float = 0.003
    release: float = 0.3
    ratio: float = 3.0
    hp_cutoff: float = 300.0


@dataclass(frozen=True, kw_only=True)
class Limiter:
    enabled: bool = False
    threshold: float = 0.0
    ceiling: float = -0.35
    release: float = 0.05


@dataclass(frozen=True, kw_only=True)
class StemsMetadata:
    """The JSON of the ``stem`` box: names and colours of the four stems, mastering DSP."""

    names: tuple[str, ...] = NI_SLOTS
    colours: tuple[str, ...] = tuple(NI_COLOURS[n] for n in NI_SLOTS)
    compressor: Compressor = field(default_factory=Compressor)
    limiter: Limiter = field(default_factory=Limiter)
    version: int = 1

    def __post_init__(self) -> None:
        if len(self.names) != 4 or len(self.colours) != 4:
            raise NiStemsError(f"metadata: NI Stems has exactly 4 stems, got {len(self.names)} names")
        for c in self.colours:
            if not (isinstance(c, str) and len(c) == 7 and c[0] == "#" and all(ch in "0123456789abcdefABCDEF" for ch in c[1:])):
                raise NiStemsError(f"metadata: colour {c!r} is not of the form #RRGGBB")

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version,
                "stems": [{"name": n, "color": c} for n, c in zip(self.names, self.colours)],
                "mastering_dsp": {"compressor": asdict(self.compressor), "limiter": asdict(self.limiter)}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StemsMetadata:
        try:
            stems = data["stems"]
            dsp = data.get("mastering_dsp", {})
            comp = {k: v for k, v in dsp.get("compressor", {}).items() if k in Compressor.__dataclass_fields__}
            lim = {k: v for k, v in dsp.get("limiter", {}).items() if k in Limiter.__dataclass_fields__}
            return cls(names=tuple(str(s["name"]) for s in stems), colours=tuple(str(s["color"]) for s in stems),
                       compressor=Compressor(**comp), limiter=Limiter(**lim), version=int(data.get("version", 1)))
        except (KeyError, TypeError, AttributeError) as e:
            raise NiStemsError(f"stem metadata: malformed ({e})") from None


def group_stems(names: list[str] | tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """Which stems fill each NI slot: drums, bass and vocals by name, every other stem summed into "other".

    ``["drums", "bass", "other", "vocals", "guitar", "piano"]`` -> ``{..., "other": ("other", "guitar", "piano")}``.
    Raises :class:`NiStemsError` when a slot stays empty (e.g. a 2-stem vocals/accompaniment result).
    """
    names = list(names)
    groups = {"drums": (), "bass": (), "vocals": ()}
    for slot in groups:
        if slot in names:
            groups[slot] = (slot,)
    rest = tuple(n for n in names if n not in ("drums", "bass", "vocals"))
    missing = [s for s in ("drums", "bass", "vocals") if not groups[s]] + ([] if rest else ["other"])
    if missing:
        raise NiStemsError(
            f"NI Stems needs four stems (drums, bass, other, vocals; any further stems such as guitar or piano are "
            f"folded into other), but the stems are {', '.join(names) or 'none'}: no {', '.join(missing)}. "
            f"Separate the song with a 4- or 6-stem model")
    return {"drums": groups["drums"], "bass": groups["bass"], "other": rest, "vocals": groups["vocals"]}


def _stereo(x: np.ndarray, what: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2 or x.shape[0] not in (1, 2):
        raise NiStemsError(f"{what}: expected (channels, samples) with 1 or 2 channels, got shape {x.shape}")
    return np.repeat(x, 2, axis=0) if x.shape[0] == 1 else x


def _frames(audio: np.ndarray, fmt: str, samplerate: int) -> Iterator[av.AudioFrame]:
    """``audio`` ``(2, T)`` float32 as encoder frames of :data:`BLOCK` samples in the encoder's sample format."""
    for start in range(0, audio.shape[1], BLOCK):
        block = np.ascontiguousarray(audio[:, start:start + BLOCK])
        if fmt.startswith("s16"):
            block = np.clip(np.round(block * 32767.0), -32768, 32767).astype(np.int16)
        elif fmt.startswith("s32"):
            block = np.clip(np.round(block * 2147483647.0), -2147483648, 2147483647).astype(np.int32)
        frame = av.AudioFrame.from_ndarray(block, format=fmt, layout="stereo")
        frame.sample_rate = samplerate
        frame.pts = start
        yield frame


def _encode_track(stream: Any, audio: np.ndarray, samplerate: int) -> list[Any]:
    """Every packet of one track (runs in a worker thread: PyAV releases the GIL inside the encoder)."""
    fmt = stream.codec_context.format.name  # fltp for aac, s16p/s32p for alac
    packets = []
    for frame in _frames(audio, fmt, samplerate):
        packets += stream.encode(frame)
    return packets + list(stream.encode(None))


def _encode(tmp: Path, tracks: list[tuple[str, np.ndarray]], samplerate: int, codec: str, bitrate: int,
            workers: int | None = None) -> None:
    """Five tracks into an M4A container (FFmpeg's ``ipod`` muxer). The encoders are independent, so each track is
    encoded in its own thread (``workers`` at once; default: one per track up to the CPU count): encoding five
    streams one block at a time on one core was what made a 3.5-minute song take minutes. The packets are then
    muxed in time order, so the file interleaves the tracks as a lock-step encode did."""
    workers = workers or max(1, min(len(tracks), os.cpu_count() or 1))
    with av.open(str(tmp), "w", format="ipod") as out:
        streams = []
        for name, _ in tracks:
            # FFmpeg's "fast" AAC coder: about twice the speed of its default (twoloop) search, which at 256 kbit/s
            # buys no audible difference
            options = {"aac_coder": "fast"} if codec == "aac" else {}
            stream = out.add_stream(codec, rate=samplerate, layout="stereo", options=options)
            if codec == "aac":
                stream.bit_rate = bitrate
            stream.metadata["handler_name"] = name  # the track name most readers show (stempeg's stream titles)
            stream.metadata["title"] = name
            streams.append(stream)
        with ThreadPoolExecutor(workers, thread_name_prefix="stemwright-nistems") as pool:
            encoded = list(pool.map(_encode_track, streams, [a for _, a in tracks], [samplerate] * len(tracks)))
        # (dts, track) order: the lock-step interleaving, whatever order the threads finished in
        order = sorted(((p.dts if p.dts is not None else 0, i, k) for i, ps in enumerate(encoded)
                        for k, p in enumerate(ps)), key=lambda t: (t[0], t[1], t[2]))
        for _, i, k in order:
            out.mux(encoded[i][k])


def _boxes(data: bytes, start: int, end: int) -> list[tuple[str, int, int, int]]:
    """``(type, offset, header size, total size)`` of the boxes between ``start`` and ``end``."""
    out = []
    off = start
    while off + 8 <= end:
        size, kind = struct.unpack(">I4s", data[off:off + 8])
        header = 8
        if size == 1:
            size, header = struct.unpack(">Q", data[off + 8:off + 16])[0], 16
        elif size == 0:
            size = end - off
        if size < header or off + size > end:
            raise NiStemsError(f"not an MP4 file (box {kind!r} at byte {off}: size {size} runs past its parent)")
        out.append((kind.decode("latin-1"), off, header, size))
        off += size
    return out


def _box(kind: str, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind.encode("latin-1")) + payload


def add_stem_box(path: Path, metadata: StemsMetadata) -> None:
    """Append the NI ``stem`` box (the metadata JSON) to ``moov/udta`` of an MP4 whose ``moov`` follows ``mdat``."""
    data = path.read_bytes()
    top = _boxes(data, 0, len(data))
    kinds = [k for k, *_ in top]
    if "moov" not in kinds or "mdat" not in kinds or kinds.index("moov") < kinds.index("mdat"):
        raise NiStemsError(f"{path}: expected an MP4 with its moov box after mdat (got {', '.join(kinds)})")
    _, moff, mhead, msize = top[kinds.index("moov")]
    if mhead != 8:
        raise NiStemsError(f"{path}: 64-bit moov box is not supported")
    stem = _box("stem", json.dumps(metadata.to_json()).encode())
    children = _boxes(data, moff + 8, moff + msize)
    body = b""
    has_udta = False
    for kind, off, head, size in children:
        raw = data[off:off + size]
        if kind == "udta":
            has_udta = True
            inner = [b for b in _boxes(data, off + head, off + size) if b[0] != "stem"]
            raw = _box("udta", b"".join(data[o:o + s] for _, o, _, s in inner) + stem)
        body += raw
    if not has_udta:
        body += _box("udta", stem)
    path.write_bytes(data[:moff] + _box("moov", body) + data[moff + msize:])


def read_stem_metadata(path: str | Path) -> StemsMetadata:
    """The ``moov/udta/stem`` JSON of an NI Stems file."""
    p = Path(path)
    data = p.read_bytes()
    for kind, off, head, size in _boxes(data, 0, len(data)):
        if kind != "moov":
            continue
        for k2, o2, h2, s2 in _boxes(data, off + head, off + size):
            if k2 != "udta":
                continue
            for k3, o3, h3, s3 in _boxes(data, o2 + h2, o2 + s2):
                if k3 == "stem":
                    try:
                        return StemsMetadata.from_json(json.loads(data[o3 + h3:o3 + s3].decode("utf-8")))
                    except (UnicodeDecodeError, json.JSONDecodeError) as e:
                        raise NiStemsError(f"{p}: the stem box is not JSON ({e})") from None
    raise NiStemsError(f"{p}: no NI stem metadata (moov/udta/stem box); not an NI Stems file")


def write_ni_stems(
    path: str | Path, mixture: np.ndarray, stems: Mapping[str, np.ndarray], samplerate: int, *,
    codec: str = "aac", bitrate: int = DEFAULT_BITRATE, metadata: StemsMetadata | None = None,
    overwrite: bool = False, workers: int | None = None,
) -> dict[str, Any]:
    """Write an NI Stems file: ``mixture`` ``(C, T)`` and the four ``stems`` (in :data:`NI_SLOTS` order, each
    ``(C, T)``, mono or stereo) at ``samplerate``. Peaks over full scale: one gain for all five tracks (so the
    stems keep summing to the mixture). ``workers``: tracks encoded at once (default one per track up to the CPU
    count). Written to a temporary name, then renamed. Returns a report."""
    p = Path(path)
    if codec not in CODECS:
        raise NiStemsError(f"codec: must be one of {', '.join(CODECS)}, got {codec!r}")
    if codec == "aac" and not 32_000 <= bitrate <= 512_000:
        raise NiStemsError(f"bitrate: must be in 32-512 kbit/s for AAC, got {bitrate / 1000:g}")
    if samplerate not in AAC_RATES:
        raise NiStemsError(f"sample rate {samplerate} Hz is not one AAC/ALAC in MP4 supports ({AAC_RATES})")
    if list(stems) != list(NI_SLOTS):
        raise NiStemsError(f"stems: expected {', '.join(NI_SLOTS)} in that order, got {', '.join(stems)}")
    meta = metadata or StemsMetadata()
    arrays = [_stereo(mixture, "mixture")] + [_stereo(stems[n], n) for n in NI_SLOTS]
    lengths = {a.shape[1] for a in arrays}
    if len(lengths) != 1:
        raise NiStemsError(f"the mixture and stems differ in length ({sorted(lengths)} samples)")
    arrays, clip = prepare_peaks_many(arrays, "rescale")
    if p.exists() and not overwrite:
        raise AudioError(p, "already exists")

    def write(tmp: Path) -> None:
        _encode(tmp, list(zip(("mixture",) + meta.names, arrays)), samplerate, codec, bitrate, workers)
        add_stem_box(tmp, meta)

    atomic_write(p, write)
    return {"path": str(p), "codec": codec, "bitrate": bitrate if codec == "aac" else None,
            "samplerate": samplerate, "samples": int(arrays[0].shape[1]), "stems": list(meta.names), "clip": clip}


def _declared_lengths(path: Path) -> list[int]:
    """Each audio stream's duration in samples as its track header declares it (0 where unknown)."""
    with av.open(str(path)) as container:
        out = []
        for stream in (s for s in container.streams if s.type == "audio"):
            if stream.duration is None or stream.time_base is None:
                out.append(0)
            else:
                out.append(int(round(float(stream.duration * stream.time_base) * stream.codec_context.sample_rate)))
        return out


@dataclass(frozen=True)
class NiStems:
    """A decoded NI Stems file: ``mixture`` and each stem ``(C, T)`` float32 at ``samplerate``."""

    mixture: np.ndarray
    stems: dict[str, np.ndarray]
    samplerate: int
    metadata: StemsMetadata


def read_ni_stems(path: str | Path) -> NiStems:
    """Decode all five streams of an NI Stems file and its metadata."""
    p = Path(path)
    count = audio_stream_count(p)
    if count != 5:
        raise NiStemsError(f"{p}: an NI Stems file has 5 audio streams (mixture + 4 stems), this one has {count}")
    meta = read_stem_metadata(p)
    declared = _declared_lengths(p)
    # Decoders skip the encoder's priming (the edit list) but return the last AAC frame whole; the track duration
    # says where the audio ends (AAC pads the final packet to a multiple of 16 samples, so up to 15 extra remain).
    decoded = [read_audio(p, stream=i) for i in range(5)]
    audio = [d.samples[:, :n] if n else d.samples for d, n in zip(decoded, declared)]
    rates = {d.samplerate for d in decoded}
    if len(rates) != 1:
        raise NiStemsError(f"{p}: streams at different sample rates {sorted(rates)}")
    return NiStems(audio[0], dict(zip(meta.names, audio[1:])), rates.pop(), meta)
