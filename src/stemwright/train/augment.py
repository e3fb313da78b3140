"""On-the-fly augmentation and the random-remix example sampler.

Cheap, per-source augmentations (the ones Demucs and Open-Unmix train with): random gain, channel swap, polarity
inversion, time shift (each source cut at its own random offset), and a joint pitch+tempo change by resampling
("speed", as in Demucs' ``speed`` augmentation: pitch and tempo move together, which is cheap and keeps the
signal natural). Augmentations are applied to each stem before summing, so the mixture stays the exact sum.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from stemwright.train.data import DataError, Song, resample_chunk, stem_for, to_channels


@dataclass(frozen=True, kw_only=True)
class AugmentConfig:
    gain_db: tuple[float, float] = (-6.0, 3.0)
    channel_swap: float = 0.5
    polarity: float = 0.5
    speed_prob: float = 0.3
    speed_range: tuple[float, float] = (0.9, 1.1)
    silence_prob: float = 0.05  # drop one source entirely: the model must learn "absent"
    remix_prob: float = 0.7  # each source from a different song (else one song, aligned)
    mix_peak_max: float = 0.98

    def __post_init__(self) -> None:
        for name in ("channel_swap", "polarity", "speed_prob", "silence_prob", "remix_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"augment.{name} must be a probability in [0, 1], got {getattr(self, name)}")
        if self.gain_db[0] > self.gain_db[1] or self.speed_range[0] > self.speed_range[1] or self.speed_range[0] <= 0:
            raise ValueError("augment.gain_db and augment.speed_range must be [low, high] with low <= high (speed > 0)")

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "AugmentConfig":
        data = dict(data or {})
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"augment: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


class RemixSampler:
    """Draws ``(mix (C, L), stems (S, C, L))`` training examples from weighted song pools.

    ``pools``: list of ``(songs, weight)``; a source is drawn from the pools that provide it, by weight.
    """

    def __init__(
        self,
        pools: list[tuple[list[Song], float]],
        *,
        sources: tuple[str, ...],
        samplerate: int,
        channels: int,
        segment_frames: int,
        augment: AugmentConfig,
        seed: int = 0,
    ):
        self.sources, self.samplerate, self.channels = sources, samplerate, channels
        self.length, self.aug = segment_frames, augment
        self.rng = random.Random(seed)
        self.by_source: dict[str, list[tuple[list[tuple[Song, list]], float]]] = {}
        for src in sources:
            options = []
            for songs, weight in pools:
                have = [(song, files) for song in songs if (files := stem_for(song, src))]
                if have and weight > 0:
                    options.append((have, weight))
            if not options:
                raise DataError(f"no training dataset provides source {src!r}")
            self.by_source[src] = options
        self.complete = [
            song for songs, w in pools if w > 0 for song in songs if all(stem_for(song, s) for s in sources)
        ]

    def _pick(self, source: str) -> tuple[Song, list]:
        options = self.by_source[source]
        have = self.rng.choices([o[0] for o in options], weights=[o[1] for o in options])[0]
        return self.rng.choice(have)

    def _cut(self, song: Song, files: list, start_frac: float | None, speed: float) -> np.ndarray:
        sr = song.samplerate
        need = int(math.ceil(self.length * speed * sr / self.samplerate)) + 16
        span = max(0, song.frames - need)
        start = int((self.rng.random() if start_frac is None else start_frac) * span)
        parts = [f.read(start, need) for f in files]
        nch = max(p.shape[0] for p in parts)
        x = sum(to_channels(p, nch) for p in parts)
        x = resample_chunk(np.asarray(x, dtype=np.float32), sr * speed, self.samplerate, self.length)
        return to_channels(x, self.channels, self.rng)

    def example(self) -> tuple[np.ndarray, np.ndarray]:
        """One example. Shape: ``mix (C, L)``, ``stems (S, C, L)``."""
        a, rng = self.aug, self.rng
        coherent = self.complete and rng.random() >= a.remix_prob
        song = rng.choice(self.complete) if coherent else None
        start = rng.random() if coherent else None
        speed_all = rng.uniform(*a.speed_range) if coherent and rng.random() < a.speed_prob else 1.0
        stems = []
        for src in self.sources:
            if coherent:
                files = stem_for(song, src)
                x = self._cut(song, files, start, speed_all)
            else:
                s, files = self._pick(src)
                speed = rng.uniform(*a.speed_range) if rng.random() < a.speed_prob else 1.0
                x = self._cut(s, files, None, speed)
            x = x * 10 ** (rng.uniform(*a.gain_db) / 20)
            if rng.random() < a.polarity:
                x = -x
            if x.shape[0] == 2 and rng.random() < a.channel_swap:
                x = x[::-1]
            stems.append(x)
        if len(stems) > 1 and rng.random() < a.silence_prob:
            stems[rng.randrange(len(stems))] = np.zeros_like(stems[0])
        out = np.stack(stems).astype(np.float32)
        mix = out.sum(0)
        peak = float(np.abs(mix).max())
        if peak > a.mix_peak_max:
            out *= a.mix_peak_max / peak
            mix = out.sum(0)
        return mix, out

    def batch(self, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Shape: ``mix (B, C, L)``, ``stems (B, S, C, L)``."""
        pairs = [self.example() for _ in range(size)]
        return torch.from_numpy(np.stack([p[0] for p in pairs])), torch.from_numpy(np.stack([p[1] for p in pairs]))

    def get_state(self) -> list:
        state = self.rng.getstate()
        return [state[0], list(state[1]), state[2]]

    def set_state(self, state: list) -> None:
        self.rng.setstate((state[0], tuple(state[1]), state[2]))
