"""Production across stems, as real mixes have it: parallel and sidechain compression, a shared reverb/delay send,
bus compression, a stereo widener, a mastering limiter at streaming loudness, and a lossy round trip of the mixture.

Each ingredient is an option of :class:`BusOptions` (all off by default: ``stemwright synth``'s songs for existing
seeds are unchanged). Draws come from their own generator (``(seed, "bus")``), so turning an ingredient on changes
no other draw of the song, and the same seed and options give the same song.

How the stems stay the truth (the mixture is still their exact sum, except after the codec):

- **Shared send** (one reverb and one delay fed by every stem): both effects are linear, so the return of the shared
  bus is the sum of each stem's own return. Each stem's truth carries its own tail, as a real multitrack's stems are
  printed with their sends (MUSDB18's stems include their effects). Tested: the per-stem tails sum to the shared
  bus's output.
- **Bus compression, limiter**: the gain curve is computed once from the summed mix (the compressor's key) and the
  same curve multiplies every stem, so the stems sum to the compressed mix exactly.
- **Widener**: a mid/side gain, linear and the same on every stem.
- **Parallel compression** (drums) and **sidechain ducking** (bass, and pads in electronic styles, keyed by the
  drums' low end) change one stem only; the stem's truth is the processed stem.
- **Codec** (``mp3`` / ``aac``): only the *mixture* goes through the encoder and decoder, as a song one separates
  from a streaming service or an MP3; the stems stay the uncoded truth, so ``mixture`` differs from their sum by
  the coding noise (``metadata["mixing"]["codec"]`` says so).
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import pedalboard as pb
import soundfile as sf
from scipy.signal import butter, sosfilt

from stemwright.errors import StemwrightError
from stemwright.mixer.loudness import integrated_lufs, true_peak_gain
from stemwright.synth.production import loud_rms, normalise

Stems = dict[str, np.ndarray]  # name -> (2, T) float32

CODECS = ("mp3", "aac")
STREAMING_LUFS = (-14.0, -9.0)  # integrated loudness of the master: streaming reference to a loud modern master
CEILING_DBTP = -1.0


class BusOptionError(StemwrightError):
    """An unknown production ingredient or codec was asked for."""


@dataclass(frozen=True)
class BusOptions:
    """Which production ingredients across stems a song gets (see the module docstring); all off by default."""

    parallel: bool = False
    sidechain: bool = False
    send: bool = False
    bus_comp: bool = False
    widen: bool = False
    master: bool = False
    codec: str | None = None

    def __post_init__(self) -> None:
        if self.codec is not None and self.codec not in CODECS:
            raise BusOptionError(f"codec must be one of {', '.join(CODECS)}, got {self.codec!r}")

    @property
    def any(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self))

    @classmethod
    def parse(cls, text: str) -> "BusOptions":
        """From a comma-separated list: ``all`` (every ingredient, MP3 round trip), ``none``, or names of
        :data:`INGREDIENTS` and ``mp3`` / ``aac``. Raises :class:`BusOptionError` for an unknown name."""
        words = [w.strip() for w in text.split(",") if w.strip()]
        if words == ["none"] or not words:
            return cls()
        if words == ["all"]:
            return cls(**{n: True for n in INGREDIENTS}, codec="mp3")
        flags, codec = {}, None
        for w in words:
            if w in INGREDIENTS:
                flags[w] = True
            elif w in CODECS and codec is None:
                codec = w
            else:
                raise BusOptionError(f"production ingredient {w!r} unknown or repeated (all, none, "
                                     f"{', '.join(INGREDIENTS)}, or one of {', '.join(CODECS)})")
        return cls(**flags, codec=codec)


INGREDIENTS = tuple(f.name for f in fields(BusOptions) if f.name != "codec")


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return round(float(rng.uniform(lo, hi)), 3)


def _db(x: float) -> float:
    return 20 * float(np.log10(max(x, 1e-12)))


def compressor_gain(key: np.ndarray, samplerate: int, threshold_db: float, ratio: float, attack_ms: float,
                    release_ms: float, block: int = 32) -> np.ndarray:
    """Feed-forward compressor gain curve keyed by ``key`` (hard knee, RMS over ``block`` samples, one-pole attack and
    release on the gain reduction). Shape: ``(C, T)`` or ``(T,)`` -> ``(T,)`` float32, values in (0, 1]."""
    mono = np.square(key.astype(np.float64)).mean(axis=0) if key.ndim == 2 else np.square(key.astype(np.float64))
    n = len(mono)
    nb = -(-n // block)
    padded = np.pad(mono, (0, nb * block - n))
    level = 10 * np.log10(padded.reshape(nb, block).mean(axis=1) + 1e-12)
    target = np.maximum(0.0, level - threshold_db) * (1 - 1 / ratio)
    a_att = 1 - np.exp(-block / (attack_ms * 1e-3 * samplerate))
    a_rel = 1 - np.exp(-block / (release_ms * 1e-3 * samplerate))
    reduction = np.empty(nb)
    g = 0.0
    for i, t in enumerate(target):  # the attack/release switch is not a linear filter: one pass over the blocks
        g += (a_att if t > g else a_rel) * (t - g)
        reduction[i] = g
    centres = (np.arange(nb) + 0.5) * block
    return (10 ** (-np.interp(np.arange(n), centres, reduction) / 20)).astype(np.float32)


def _scaled(stems: Stems, gain: np.ndarray) -> Stems:
    return {k: (v * gain[None]).astype(np.float32) for k, v in stems.items()}


def _mix(stems: Stems) -> np.ndarray:
    return np.sum(np.stack(list(stems.values())), axis=0, dtype=np.float32)


def parallel_compression(drums: np.ndarray, rng: np.random.Generator, sr: int) -> tuple[np.ndarray, dict]:
    """New York compression: the drums plus a heavily compressed copy. Shape: ``(2, T)`` -> ``(2, T)``."""
    p = {"threshold_db": _u(rng, -36, -24), "ratio": _u(rng, 8, 20), "attack_ms": _u(rng, 0.5, 4),
         "release_ms": _u(rng, 40, 150), "blend_db": _u(rng, -10, -3)}
    comp = pb.Pedalboard([pb.Compressor(threshold_db=p["threshold_db"], ratio=p["ratio"], attack_ms=p["attack_ms"],
                                        release_ms=p["release_ms"])])
    wet = comp(np.ascontiguousarray(drums, dtype=np.float32), sr, reset=True)[:, : drums.shape[1]]
    # level-match the crushed copy to the dry drums before blending (how it is set up on a console)
    match = np.sqrt(np.sum(drums.astype(np.float64) ** 2) / max(np.sum(wet.astype(np.float64) ** 2), 1e-12))
    out = drums + np.float32(match * 10 ** (p["blend_db"] / 20)) * wet
    # the fader is pulled back to the drums' level: the blend changes their texture, not the stem balance
    return normalise(out, 20 * np.log10(max(loud_rms(drums), 1e-9))), p


def sidechain_duck(stems: Stems, rng: np.random.Generator, sr: int, style: str) -> tuple[Stems, dict]:
    """Duck the bass (and, in electronic / hip-hop, the other stem) under the drums' low end (the kick)."""
    sos = butter(4, 150, btype="lowpass", fs=sr, output="sos")
    key = sosfilt(sos, stems["drums"].mean(axis=0).astype(np.float64))
    key_db = _db(float(np.sqrt(np.mean(key**2)))) if key.size else -120.0
    p = {"threshold_db": round(key_db + _u(rng, -3, 3), 2), "ratio": _u(rng, 3, 10), "attack_ms": _u(rng, 1, 5),
         "release_ms": _u(rng, 60, 200), "stems": ["bass"]}
    if style in ("electronic", "hip-hop") and "other" in stems and rng.random() < 0.6:
        p["stems"].append("other")
    gain = compressor_gain(key, sr, p["threshold_db"], p["ratio"], p["attack_ms"], p["release_ms"])
    return {k: (v * gain[None]).astype(np.float32) if k in p["stems"] else v for k, v in stems.items()}, p


# Send levels (dB) into the shared reverb (return at wet 0.25: its tail is 7-9 dB below what it is sent, so a
# vocal tail lies 11-21 dB under the dry voice) and into the delay (unity return).
SEND_DB = {"vocals": (-12, -4), "drums": (-20, -10), "other": (-14, -6), "guitar": (-14, -6), "piano": (-14, -6)}
DELAY_SEND_DB = {"vocals": (-24, -14), "other": (-26, -16)}
REVERB_RETURN = 0.25


def shared_send(stems: Stems, rng: np.random.Generator, sr: int, tempo: float) -> tuple[Stems, dict]:
    """One reverb and one tempo-synced delay shared by the stems; each stem gets the tail of its own send (see the
    module docstring). Bass sends nothing (as usual: a reverb on bass muddies the low end)."""
    rev = {"room_size": _u(rng, 0.5, 0.92), "damping": _u(rng, 0.2, 0.7), "width": _u(rng, 0.8, 1.0),
           "wet_level": REVERB_RETURN}
    beat = 60.0 / tempo
    dly = {"delay_seconds": round(beat * float(rng.choice([0.5, 0.75, 1.0])), 4), "feedback": _u(rng, 0.15, 0.45)}
    sends = {k: _u(rng, *SEND_DB[k]) for k in stems if k in SEND_DB}
    dsends = {k: _u(rng, *DELAY_SEND_DB[k]) for k in stems if k in DELAY_SEND_DB}
    reverb = pb.Pedalboard([pb.Reverb(dry_level=0.0, **rev)])
    delay = pb.Pedalboard([pb.Delay(mix=1.0, **dly)])
    out = {}
    for k, x in stems.items():
        y = x.astype(np.float32).copy()
        if k in sends:
            y += reverb(np.ascontiguousarray(x * np.float32(10 ** (sends[k] / 20))), sr, reset=True)[:, : x.shape[1]]
        if k in dsends:
            y += delay(np.ascontiguousarray(x * np.float32(10 ** (dsends[k] / 20))), sr, reset=True)[:, : x.shape[1]]
        out[k] = y.astype(np.float32)
    return out, {"reverb": rev, "delay": dly, "reverb_send_db": sends, "delay_send_db": dsends}


def bus_compression(stems: Stems, rng: np.random.Generator, sr: int) -> tuple[Stems, dict]:
    """A glue compressor on the mix bus: its gain curve from the summed mix, applied to every stem."""
    mix = _mix(stems)
    rms_db = _db(float(np.sqrt(np.mean(mix.astype(np.float64) ** 2))))
    p = {"threshold_db": round(rms_db + _u(rng, -6, 0), 2), "ratio": _u(rng, 1.5, 4), "attack_ms": _u(rng, 5, 30),
         "release_ms": _u(rng, 80, 300)}
    gain = compressor_gain(mix, sr, p["threshold_db"], p["ratio"], p["attack_ms"], p["release_ms"])
    makeup = np.float32(1 / max(float(np.sqrt(np.mean(gain.astype(np.float64) ** 2))), 1e-6))
    p["max_reduction_db"] = round(-_db(float(gain.min())), 2)
    return _scaled(stems, gain * makeup), p


def widen(stems: Stems, rng: np.random.Generator) -> tuple[Stems, dict]:
    """Mid/side widener (side gain > 1), the same on every stem."""
    w = _u(rng, 1.15, 1.6)
    out = {}
    for k, x in stems.items():
        mid, side = (x[0] + x[1]) / 2, (x[0] - x[1]) / 2 * np.float32(w)
        out[k] = np.stack([mid + side, mid - side]).astype(np.float32)
    return out, {"side_gain": w}


def master(stems: Stems, rng: np.random.Generator, sr: int) -> tuple[Stems, dict]:
    """Mastering: gain to a streaming loudness, then a true-peak limiter at -1 dBTP; both curves computed on the mix
    and applied to every stem."""
    target = _u(rng, *STREAMING_LUFS)
    mix = _mix(stems)
    lufs = integrated_lufs(mix, sr) if mix.shape[1] >= int(0.4 * sr) else _db(float(np.sqrt(np.mean(mix**2))))
    stems = _scaled(stems, np.full(mix.shape[1], 10 ** ((target - lufs) / 20), dtype=np.float32))
    gain = true_peak_gain(_mix(stems), sr, CEILING_DBTP).astype(np.float32)
    return _scaled(stems, gain), {"target_lufs": target, "ceiling_dbtp": CEILING_DBTP,
                                  "max_reduction_db": round(-_db(float(gain.min())), 2)}


def codec_round_trip(mixture: np.ndarray, codec: str, rng: np.random.Generator, sr: int) -> tuple[np.ndarray, dict]:
    """Encode and decode the mixture: ``mp3`` with pedalboard's LAME (VBR quality 2-6), ``aac`` with ffmpeg's
    encoder (128-256 kb/s). The result is aligned and cut to the input's length. Shape: ``(2, T)`` -> ``(2, T)``."""
    if codec == "mp3":
        q = _u(rng, 2, 6)
        y = pb.Pedalboard([pb.MP3Compressor(vbr_quality=q)])(np.ascontiguousarray(mixture), sr, reset=True)
        return np.ascontiguousarray(y[:, : mixture.shape[1]], dtype=np.float32), {"codec": "mp3", "vbr_quality": q}
    kbps = int(rng.choice([128, 192, 256]))
    return _ffmpeg_aac(mixture, sr, kbps), {"codec": "aac", "bitrate_kbps": kbps}


def _ffmpeg_aac(x: np.ndarray, sr: int, kbps: int) -> np.ndarray:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise BusOptionError("the aac round trip needs ffmpeg (Debian package ffmpeg); it was not found")
    with tempfile.TemporaryDirectory(prefix="stemwright-aac-") as d:
        src, enc, dec = Path(d) / "in.wav", Path(d) / "x.m4a", Path(d) / "out.wav"
        sf.write(str(src), x.T, sr, subtype="FLOAT")
        for args in (["-i", str(src), "-c:a", "aac", "-b:a", f"{kbps}k", str(enc)], ["-i", str(enc), str(dec)]):
            subprocess.run([ffmpeg, "-v", "error", "-y", *args], check=True, capture_output=True)
        y, _ = sf.read(str(dec), dtype="float32", always_2d=True)
    y = y.T
    # ffmpeg's AAC decoder trims the encoder's priming samples (edit list), so y starts with x; pad a short tail
    if y.shape[1] < x.shape[1]:
        y = np.pad(y, ((0, 0), (0, x.shape[1] - y.shape[1])))
    return np.ascontiguousarray(y[:, : x.shape[1]], dtype=np.float32)


def apply_bus(stems: Stems, options: BusOptions, rng: np.random.Generator, sr: int, style: str,
              tempo: float) -> tuple[Stems, dict]:
    """The ingredients before the master gain, in signal-flow order: parallel and sidechain compression (per stem),
    the shared send, bus compression, widener (:func:`master` and :func:`codec_round_trip` come after the song's
    master gain). The caller's arrays are not modified. Returns the stems and what was done."""
    record: dict = {}
    stems = dict(stems)
    if options.parallel:
        stems["drums"], record["parallel_compression"] = parallel_compression(stems["drums"], rng, sr)
    if options.sidechain:
        stems, record["sidechain"] = sidechain_duck(stems, rng, sr, style)
    if options.send:
        stems, record["shared_send"] = shared_send(stems, rng, sr, tempo)
    if options.bus_comp:
        stems, record["bus_compression"] = bus_compression(stems, rng, sr)
    if options.widen:
        stems, record["widener"] = widen(stems, rng)
    return stems, record
