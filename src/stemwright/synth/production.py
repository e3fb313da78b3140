"""Per-stem production with pedalboard: EQ, compression, saturation, chorus, delay, reverb; panning and levels.

Every effect is drawn at random within ranges a mixing engineer would use for that stem; the description of each
chain goes into the song's JSON (same effect names and fields as the mix document in docs/ARCHITECTURE.md).
The stems are summed linearly afterwards, so the mixture is exactly the sum of the processed stems.
"""

from __future__ import annotations

import numpy as np
import pedalboard as pb

Effect = dict  # {"type": ..., parameters...}


def pan_stereo(x: np.ndarray, pan: float) -> np.ndarray:
    """W3C StereoPannerNode equal-power pan of a stereo signal (the project's pan law). Shape: (2, T) -> (2, T)."""
    if pan <= 0:
        xg = (pan + 1) * np.pi / 2
        gl, gr = np.cos(xg), np.sin(xg)
        return np.stack([x[0] + x[1] * gl, x[1] * gr]).astype(np.float32)
    xg = pan * np.pi / 2
    gl, gr = np.cos(xg), np.sin(xg)
    return np.stack([x[0] * gl, x[1] + x[0] * gr]).astype(np.float32)


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return round(float(rng.uniform(lo, hi)), 3)


def stem_effects(stem: str, rng: np.random.Generator, style: str) -> list[Effect]:
    """A random but sensible effect chain for one stem."""
    fx: list[Effect] = []
    if stem == "vocals":
        fx.append({"type": "highpass", "cutoff_hz": _u(rng, 80, 160)})
        fx.append({"type": "peak", "cutoff_hz": _u(rng, 2500, 5000), "gain_db": _u(rng, 0, 4), "q": _u(rng, 0.7, 1.5)})
        fx.append(
            {
                "type": "compressor",
                "threshold_db": _u(rng, -26, -14),
                "ratio": _u(rng, 2, 5),
                "attack_ms": _u(rng, 2, 15),
                "release_ms": _u(rng, 60, 200),
            }
        )
        if rng.random() < 0.5:
            fx.append(
                {
                    "type": "delay",
                    "delay_seconds": _u(rng, 0.12, 0.45),
                    "feedback": _u(rng, 0.1, 0.35),
                    "mix": _u(rng, 0.05, 0.2),
                }
            )
    elif stem == "drums":
        if rng.random() < 0.6:
            fx.append({"type": "lowshelf", "cutoff_hz": _u(rng, 60, 120), "gain_db": _u(rng, -2, 4), "q": 0.7})
        fx.append(
            {
                "type": "compressor",
                "threshold_db": _u(rng, -20, -8),
                "ratio": _u(rng, 2, 6),
                "attack_ms": _u(rng, 5, 30),
                "release_ms": _u(rng, 50, 150),
            }
        )
        if style in ("hip-hop", "electronic", "rock") and rng.random() < 0.4:
            fx.append({"type": "distortion", "drive_db": _u(rng, 1, 8)})
    elif stem == "bass":
        fx.append({"type": "highpass", "cutoff_hz": _u(rng, 25, 45)})
        if rng.random() < 0.5:
            fx.append({"type": "lowpass", "cutoff_hz": _u(rng, 1500, 6000)})
        fx.append(
            {
                "type": "compressor",
                "threshold_db": _u(rng, -22, -10),
                "ratio": _u(rng, 3, 8),
                "attack_ms": _u(rng, 5, 25),
                "release_ms": _u(rng, 80, 250),
            }
        )
        if rng.random() < 0.35:
            fx.append({"type": "distortion", "drive_db": _u(rng, 2, 12)})
    else:  # other
        fx.append({"type": "highpass", "cutoff_hz": _u(rng, 60, 180)})
        fx.append({"type": "highshelf", "cutoff_hz": _u(rng, 3000, 8000), "gain_db": _u(rng, -3, 3), "q": 0.7})
        fx.append(
            {
                "type": "compressor",
                "threshold_db": _u(rng, -20, -10),
                "ratio": _u(rng, 1.5, 3),
                "attack_ms": _u(rng, 10, 40),
                "release_ms": _u(rng, 100, 300),
            }
        )
        if rng.random() < 0.3:
            fx.append(
                {
                    "type": "chorus",
                    "rate_hz": _u(rng, 0.3, 1.5),
                    "depth": _u(rng, 0.1, 0.4),
                    "centre_delay_ms": _u(rng, 5, 12),
                    "feedback": 0.0,
                    "mix": _u(rng, 0.2, 0.5),
                }
            )
        if rng.random() < 0.25:
            fx.append(
                {
                    "type": "delay",
                    "delay_seconds": _u(rng, 0.15, 0.5),
                    "feedback": _u(rng, 0.1, 0.4),
                    "mix": _u(rng, 0.05, 0.2),
                }
            )
    wet = {"vocals": (0.08, 0.3), "drums": (0.02, 0.15), "bass": (0.0, 0.05), "other": (0.05, 0.3)}[stem]
    if stem != "bass" or rng.random() < 0.2:
        fx.append(
            {
                "type": "reverb",
                "room_size": _u(rng, 0.2, 0.85),
                "damping": _u(rng, 0.3, 0.8),
                "wet_level": _u(rng, *wet),
                "dry_level": 1.0,
                "width": _u(rng, 0.6, 1.0),
            }
        )
    return fx


def build_board(effects: list[Effect]) -> pb.Pedalboard:
    """pedalboard plugins for the effect descriptions (same names as the project's mix document)."""
    plugins = []
    for e in effects:
        t = e["type"]
        if t == "highpass":
            plugins.append(pb.HighpassFilter(cutoff_frequency_hz=e["cutoff_hz"]))
        elif t == "lowpass":
            plugins.append(pb.LowpassFilter(cutoff_frequency_hz=e["cutoff_hz"]))
        elif t == "lowshelf":
            plugins.append(pb.LowShelfFilter(cutoff_frequency_hz=e["cutoff_hz"], gain_db=e["gain_db"], q=e["q"]))
        elif t == "highshelf":
            plugins.append(pb.HighShelfFilter(cutoff_frequency_hz=e["cutoff_hz"], gain_db=e["gain_db"], q=e["q"]))
        elif t == "peak":
            plugins.append(pb.PeakFilter(cutoff_frequency_hz=e["cutoff_hz"], gain_db=e["gain_db"], q=e["q"]))
        elif t == "compressor":
            plugins.append(
                pb.Compressor(
                    threshold_db=e["threshold_db"],
                    ratio=e["ratio"],
                    attack_ms=e["attack_ms"],
                    release_ms=e["release_ms"],
                )
            )
        elif t == "distortion":
            plugins.append(pb.Distortion(drive_db=e["drive_db"]))
        elif t == "chorus":
            plugins.append(
                pb.Chorus(
                    rate_hz=e["rate_hz"],
                    depth=e["depth"],
                    centre_delay_ms=e["centre_delay_ms"],
                    feedback=e["feedback"],
                    mix=e["mix"],
                )
            )
        elif t == "delay":
            plugins.append(pb.Delay(delay_seconds=e["delay_seconds"], feedback=e["feedback"], mix=e["mix"]))
        elif t == "reverb":
            plugins.append(
                pb.Reverb(
                    room_size=e["room_size"],
                    damping=e["damping"],
                    wet_level=e["wet_level"],
                    dry_level=e["dry_level"],
                    width=e["width"],
                )
            )
        else:
            raise ValueError(f"effect type {t!r} is not supported by the synthesiser")
    return pb.Pedalboard(plugins)


def apply_effects(x: np.ndarray, effects: list[Effect], samplerate: int) -> np.ndarray:
    """Run the chain. Shape: (2, T) -> (2, T) float32."""
    if not effects:
        return x
    y = build_board(effects)(np.ascontiguousarray(x, dtype=np.float32), samplerate, reset=True)
    return np.ascontiguousarray(y[:, : x.shape[1]], dtype=np.float32)


def loud_rms(x: np.ndarray, frame: int = 4410) -> float:
    """RMS over the active 100 ms frames: those within 40 dB of the loudest (so a part that plays only a few
    bars is judged by those bars, not by its silences)."""
    mono = x.mean(axis=0) if x.ndim == 2 else x
    n = len(mono) // frame
    if n == 0:
        return float(np.sqrt(np.mean(mono**2))) if mono.size else 0.0
    energy = (mono[: n * frame].reshape(n, frame) ** 2).mean(axis=1)
    active = energy[energy >= energy.max() * 1e-4]
    return float(np.sqrt(active.mean())) if active.size else 0.0


def normalise(x: np.ndarray, target_db: float) -> np.ndarray:
    rms = loud_rms(x)
    return (x * np.float32(10 ** (target_db / 20) / rms)).astype(np.float32) if rms > 1e-7 else x
