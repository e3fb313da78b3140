"""Pure functions that plan and cut chunks and blend them back (overlap-add with crossfade weights).

The scheme is the one of Demucs' ``apply_model`` (so that Demucs checkpoints give identical results): chunks of
``segment`` samples start every ``stride = (1 - overlap) * segment`` samples; each chunk is fed to the model padded
to the model's valid length *with real neighbouring audio* where there is some (zeros beyond the track's ends),
the output is centre-trimmed back, weighted by a triangle window and accumulated; the sum is divided by the sum of
weights, so an identity model reconstructs its input exactly for any length, overlap and segment.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F


def plan_offsets(length: int, segment_length: int, overlap: float) -> list[int]:
    """Start sample of each chunk. Raises for an overlap outside [0, 1)."""
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    if segment_length <= 0:
        raise ValueError(f"segment length must be positive, got {segment_length}")
    stride = max(1, int((1 - overlap) * segment_length))
    return list(range(0, max(length, 1), stride))


# Each chunk of the short-first ramp is this much longer than the one before: the next chunk must be separated
# while the previous one's final part plays, i.e. RAMP_GROWTH x RTF x L <= (1 - overlap) x L; at 1.5 that holds up
# to an RTF of 0.5 with the usual 25 % overlap (the default model runs at 0.06-0.4 on 2 CPU threads).
RAMP_GROWTH = 1.5
# A ramp never has more than this many chunks before the full ones: bounds the plan whatever the arguments.
MAX_RAMP = 60


@dataclass(frozen=True)
class ChunkGrid:
    """Where each chunk starts and how long it is: ``segment_length`` samples every ``(1 - overlap) *
    segment_length``, or, with ``first_length`` (the *short first chunk* rule, for hearing a song while it is
    separated), a first chunk of ``first_length`` samples, each next one RAMP_GROWTH times the previous, up to
    ``segment_length``, then the usual ones. Each chunk starts ``(1 - overlap)`` of the previous one's length after
    it, so neighbours always crossfade over ``overlap`` of the shorter one; each is weighted by the triangle of its
    own length; the ramp is stretched so that the first full chunk starts on :func:`plan_offsets`'s grid, which
    the chunks then follow (so the stems past the ramp equal those without the rule). Without ``first_length`` the
    grid is :func:`plan_offsets`'s exactly.
    """

    segment_length: int
    overlap: float
    first_length: int | None = None
    ramp: tuple[int, ...] = field(init=False)  # lengths of the chunks before the first full one

    def __post_init__(self) -> None:
        plan_offsets(1, self.segment_length, self.overlap)  # validates overlap and length
        if self.first_length is not None and self.first_length <= 0:
            raise ValueError(f"first chunk length must be positive, got {self.first_length}")
        ramp: list[int] = []
        n = self.first_length
        while n is not None and n < self.segment_length and len(ramp) < MAX_RAMP:
            ramp.append(n)
            n = max(n + 1, int(n * RAMP_GROWTH))
        object.__setattr__(self, "ramp", self._aligned(tuple(ramp)))

    def _aligned(self, ramp: tuple[int, ...]) -> tuple[int, ...]:
        """The ramp stretched so that the first full chunk starts on the usual grid (a multiple of the full
        stride): past the ramp's last overlap the chunks, and so the stems, are exactly those without the rule.
        Every ramp chunk is scaled by the smallest common factor that gets there (each capped at the segment
        length), the last rounding taken off the latest chunk that can give it."""
        full = self.stride_after(self.segment_length)
        if not ramp or sum(self.stride_after(n) for n in ramp) % full == 0:
            return ramp
        target = -(-sum(self.stride_after(n) for n in ramp) // full) * full

        def lengths(f: float) -> list[int]:
            return [min(self.segment_length, max(1, int(n * f))) for n in ramp]

        lo, hi = 1.0, self.segment_length / min(ramp) + 1.0  # at hi every chunk is capped: len(ramp) strides >= target
        for _ in range(60):
            mid = (lo + hi) / 2
            lo, hi = (lo, mid) if sum(map(self.stride_after, lengths(mid))) >= target else (mid, hi)
        out = lengths(hi)
        excess = sum(map(self.stride_after, out)) - target
        for k in range(len(out) - 1, -1, -1):
            if excess == 0:
                break
            want = self.stride_after(out[k]) - excess
            m = next((m for m in range(out[k], 0, -1) if self.stride_after(m) <= want), None)
            if m is not None and self.stride_after(m) == want:
                out[k], excess = m, 0
        return tuple(out) if excess == 0 else ramp

    def stride_after(self, length: int) -> int:
        """Samples between the start of a chunk of ``length`` samples and the next one."""
        return max(1, int((1 - self.overlap) * length))

    def chunk(self, k: int) -> tuple[int, int]:
        """``(offset, nominal length)`` of chunk ``k`` (the last chunk of a track is cut at its end)."""
        offset = sum(self.stride_after(n) for n in self.ramp[:k])
        if k < len(self.ramp):
            return offset, self.ramp[k]
        return offset + (k - len(self.ramp)) * self.stride_after(self.segment_length), self.segment_length

    def chunks(self, length: int) -> list[tuple[int, int]]:
        """``(offset, length)`` of every chunk of a track of ``length`` samples, the lengths cut at its end."""
        out = []
        k = 0
        while True:
            offset, n = self.chunk(k)
            if offset >= max(length, 1):
                return out
            out.append((offset, min(n, length - offset)))
            k += 1


def triangle_weight(segment_length: int, transition_power: float = 1.0) -> torch.Tensor:
    """Triangle crossfade weight with its maximum in the middle (Demucs' choice). Shape: ``(segment_length,)``."""
    half = segment_length // 2
    weight = torch.cat(
        [torch.arange(1, half + 1, dtype=torch.float32), torch.arange(segment_length - half, 0, -1, dtype=torch.float32)]
    )
    return (weight / weight.max()) ** transition_power


def cut_chunk(mix: torch.Tensor, offset: int, chunk_length: int, target_length: int) -> torch.Tensor:
    """The chunk ``mix[..., offset:offset+chunk_length]`` centred in a window of ``target_length`` samples, taking
    context from the track where it exists and zeros beyond its ends.

    Shape: ``(..., T)`` -> ``(..., target_length)``.
    """
    total = mix.shape[-1]
    delta = target_length - chunk_length
    start = offset - delta // 2
    end = start + target_length
    lo, hi = max(0, start), min(total, end)
    return F.pad(mix[..., lo:hi], (lo - start, end - hi))


def center_trim(x: torch.Tensor, length: int) -> torch.Tensor:
    """Trim the last axis symmetrically (extra sample on the right) to ``length``. Shape: ``(..., T) -> (..., length)``."""
    delta = x.shape[-1] - length
    if delta < 0:
        raise ValueError(f"cannot trim {x.shape[-1]} samples to {length}")
    return x[..., delta // 2 : x.shape[-1] - (delta - delta // 2)]


def batched(items: list, size: int) -> list[list]:
    """Split a list into consecutive groups of at most ``size``."""
    if size < 1:
        raise ValueError(f"batch size must be >= 1, got {size}")
    return [items[i : i + size] for i in range(0, len(items), size)]
