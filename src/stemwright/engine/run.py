"""The chunk loop: runs a model over a track of any length with bounded memory.

Where the audio comes from and goes to is the caller's business (:mod:`stemwright.api`); this module only maps a
``(C, T)`` tensor at the model's rate to ``(S, C, T)`` stems.
"""
from __future__ import annotations

import contextvars
import logging
import random
from concurrent.futures import ThreadPoolExecutor

import torch
from torch import nn

from stemwright.engine.chunking import ChunkGrid, batched, center_trim, cut_chunk, triangle_weight
from stemwright.engine import cpu_kernels
from stemwright.engine.cpu_kernels import onednn_kernels
from stemwright.engine.memory import retain_freed_memory
from stemwright.engine.progress import ProgressCallback, ProgressEvent

log = logging.getLogger(__name__)

#: Chunks run at once in threads by :class:`stemwright.Separator` (``workers=None``) on a CPU with 2 or more intra-op
#: threads, each thread with its share of them. Chosen by measurement (docs/zoo.md, "Threads or workers"): on a 2-core AVX2 EPYC shared with other
#: processes, the default model took 4x less wall time with 2 workers of 1 thread than with 2 intra-op threads
#: (whose OpenMP threads spin against the other processes), and the stems are the same.
DEFAULT_WORKERS = 2


def default_workers(device: torch.device | str) -> int:
    """``workers`` when none is given: :data:`DEFAULT_WORKERS` on a CPU with that many intra-op threads, else 1 (one
    chunk per call on a GPU, whose kernels run asynchronously anyway)."""
    if torch.device(device).type != "cpu":
        return 1
    return max(1, min(DEFAULT_WORKERS, torch.get_num_threads()))


def model_valid_length(model: nn.Module, length: int) -> int:
    """Input length the model wants for ``length`` samples (Demucs models pad to a valid length)."""
    fn = getattr(model, "valid_length", None)
    return int(fn(length)) if callable(fn) else length


def first_chunk_length(first_segment: float | None, samplerate: int) -> int | None:
    """The short first chunk in samples (``None``: the rule is off); raises for a non-positive length."""
    if first_segment is None:
        return None
    if not first_segment > 0:
        raise ValueError(f"first_segment must be positive seconds, got {first_segment}")
    return max(1, int(round(first_segment * samplerate)))


def run_batch(model: nn.Module, chunks: list[torch.Tensor], device: torch.device) -> torch.Tensor:
    """Run the model on equal-length chunks stacked as a batch.

    Shape: list of ``(C, L)`` -> ``(len(chunks), S, C, L')``.
    """
    batch = torch.stack(chunks).to(device)
    with torch.inference_mode(), onednn_kernels(device):
        out = model(batch)
    if out.dim() != 4:
        raise RuntimeError(f"model returned shape {tuple(out.shape)}; expected (batch, sources, channels, time)")
    return out.to("cpu", torch.float32)


def _run_serial(model: nn.Module, chunks: list[torch.Tensor], device: torch.device) -> list[torch.Tensor]:
    """Equal-length chunks as one batch; otherwise (a group's last, shorter chunk) one call each."""
    if len({c.shape[-1] for c in chunks}) == 1:
        return list(run_batch(model, chunks, device))
    return [run_batch(model, [chunk], device)[0] for chunk in chunks]


def _run_in_thread(model: nn.Module, chunks: list[torch.Tensor], device: torch.device,
                   threads: int) -> list[torch.Tensor]:
    # The intra-op thread count is per calling thread (OpenMP), so a worker's setting stays in its own thread.
    torch.set_num_threads(threads)
    return _run_serial(model, chunks, device)


def _prime_routes(device: torch.device, threads: int) -> None:
    """Calibrate (or read) the CPU-kernel choice for the workers' thread count here, once, rather than in every
    worker at the same time (each would time its probes against the others)."""
    if device.type != "cpu" or not cpu_kernels.available():
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        cpu_kernels.routes()
    finally:
        torch.set_num_threads(before)


def _autocast_on() -> bool:
    # autocast is thread-local state that worker threads would not inherit: such runs stay in the calling thread
    return any(torch.is_autocast_enabled(kind) for kind in ("cpu", "cuda"))


def run_chunks(model: nn.Module, chunks: list[torch.Tensor], device: torch.device,
               workers: int = 1) -> list[torch.Tensor]:
    """Run the model on a group of chunks; ``workers > 1`` splits the group into that many consecutive parts run
    at once in threads, each with ``torch.get_num_threads() // workers`` (at least 1) intra-op threads.

    Every chunk is computed exactly as it would be alone in its part (batches never mix chunks of different
    parts), so the result does not depend on the thread schedule. Shape: list of ``(C, L_i)`` -> list of
    ``(S, C, L_i')``, in order.
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    parts = batched(chunks, -(-len(chunks) // workers))
    if len(parts) == 1 or _autocast_on():
        return _run_serial(model, chunks, device)
    threads = max(1, torch.get_num_threads() // len(parts))
    _prime_routes(device, threads)
    try:
        with ThreadPoolExecutor(len(parts), thread_name_prefix="stemwright-chunk") as pool:
            # Each part in a copy of the caller's context: the precision of the products (--fast) is a ContextVar.
            futures = [pool.submit(contextvars.copy_context().run, _run_in_thread, model, part, device, threads)
                       for part in parts]
            done = [f.result() for f in futures]
    finally:
        # MKL's and ATen's own thread count are process-wide besides OpenMP's per-thread one: put them back.
        torch.set_num_threads(torch.get_num_threads())
    return [res for part in done for res in part]


def _separate_split(
    model: nn.Module,
    mix: torch.Tensor,
    segment_length: int,
    overlap: float,
    batch_size: int,
    device: torch.device,
    progress: ProgressCallback | None,
    progress_base: int,
    progress_total: int,
    transition_power: float,
    workers: int = 1,
    first_length: int | None = None,
) -> torch.Tensor:
    """Overlap-add over chunks, ``batch_size * workers`` at a time (``first_length``: the short first chunk rule,
    :class:`ChunkGrid`). Shape: ``(C, T)`` -> ``(S, C, T)``."""
    channels, length = mix.shape
    grid = ChunkGrid(segment_length, overlap, first_length)
    weights = {n: triangle_weight(n, transition_power) for n in (*grid.ramp, segment_length)}
    out: torch.Tensor | None = None
    sum_weight = torch.zeros(length)
    done = 0
    for pairs in batched(grid.chunks(length), batch_size * workers):
        group = [off for off, _ in pairs]
        lengths = [n for _, n in pairs]
        nominal = [grid.chunk(done + i)[1] for i in range(len(pairs))]
        # as demucs.apply.apply_model: the valid length of each chunk's own length (the last one is shorter)
        targets = [model_valid_length(model, n) for n in lengths]
        chunks = [cut_chunk(mix, off, n, t) for off, n, t in zip(group, lengths, targets)]
        result = run_chunks(model, chunks, device, workers)
        if out is None:
            out = torch.zeros(result[0].shape[0], channels, length)
        for res, off, n, full in zip(result, group, lengths, nominal):
            w = weights[full][:n]
            out[..., off : off + n] += w * center_trim(res, n)
            sum_weight[off : off + n] += w
        done += len(group)
        if progress is not None:
            k = progress_base + done
            progress(ProgressEvent(k / progress_total, "separate", k, progress_total))
    assert out is not None and float(sum_weight.min()) > 0
    return out.div_(sum_weight)  # in place: no second song-sized buffer


# The whole track, all shifted passes included, reuses freed memory instead of faulting it in again chunk by chunk
# (stemwright.engine.memory); one setting per track, not one per pass.
@retain_freed_memory()
def separate_tensor(
    model: nn.Module,
    mix: torch.Tensor,
    *,
    segment: float | None = None,
    overlap: float = 0.25,
    batch_size: int = 1,
    shifts: int = 0,
    device: torch.device | str = "cpu",
    progress: ProgressCallback | None = None,
    seed: int = 0,
    transition_power: float = 1.0,
    long_segment: float | None = None,
    workers: int = 1,
    first_segment: float | None = None,
) -> torch.Tensor:
    """Separate one track with chunked overlap-add inference.

    ``first_segment`` (seconds): the short first chunk rule of :class:`~stemwright.engine.chunking.ChunkGrid`
    (a first chunk that short, each next one longer up to ``segment``), what lets a stream hand out its
    first seconds early; chunked models only (ignored for whole-track calls).

    ``segment`` is in seconds (default: the model's own ``segment``; ``None`` there means the whole track in one
    call, or, for tracks longer than ``long_segment`` seconds, chunks of ``long_segment``: what bounds the memory
    of whole-track models on long inputs, the same rule as the streaming engine's). ``shifts > 0`` averages that many randomly time-shifted passes (shift trick of Défossez et al., up to
    0.5 s), seeded by ``seed`` for reproducibility. ``workers > 1`` runs that many groups of ``batch_size`` chunks at
    once in threads (:func:`run_chunks`; :class:`stemwright.Separator` passes :func:`default_workers`); the stems are
    the same as with one. The input tensor is not modified.

    Shape: ``(C, T)`` -> ``(S, C, T)``.
    """
    if mix.dim() != 2:
        raise ValueError(f"mix must be (channels, time), got shape {tuple(mix.shape)}")
    if mix.shape[-1] == 0:
        raise ValueError("mix has no samples (time axis of length 0)")
    device = torch.device(device)
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    mix = mix.detach().to("cpu", torch.float32)
    length = mix.shape[-1]
    if segment is None:
        segment = getattr(model, "segment", None)
    sr = int(model.samplerate)
    if not segment and long_segment and length > int(round(long_segment * sr)):
        segment = long_segment
    first_length = None
    if segment:
        segment_length = max(1, int(round(segment * sr)))
        first_length = first_chunk_length(first_segment, sr)
    else:
        # Whole track in one call: one chunk per pass (long enough for the shifted passes too), no overlap.
        segment_length = max(length, 1) + (int(0.5 * sr) if shifts > 0 else 0)
        overlap = 0.0
    common = dict(
        segment_length=segment_length, overlap=overlap, batch_size=batch_size, device=device,
        progress=progress, transition_power=transition_power, workers=workers, first_length=first_length,
    )
    grid = ChunkGrid(segment_length, overlap, first_length)
    if shifts <= 0:
        total = len(grid.chunks(length))
        return _separate_split(model, mix, progress_base=0, progress_total=total, **common)
    max_shift = int(0.5 * sr)
    padded = cut_chunk(mix, 0, length, length + 2 * max_shift)
    rng = random.Random(seed)
    # Draw every shift first so that the progress total counts exactly the chunks that will run.
    shift_offsets = [rng.randint(0, max_shift) for _ in range(shifts)]
    counts = [len(grid.chunks(length + max_shift - off)) for off in shift_offsets]
    total = sum(counts)
    out = None
    for i, offset in enumerate(shift_offsets):
        # The shifted view starts `offset` samples into the zero-padded track (Défossez et al.'s shift trick).
        shifted = padded[..., offset : length + max_shift]
        res = _separate_split(model, shifted, progress_base=sum(counts[:i]), progress_total=total, **common)
        res = res[..., max_shift - offset : max_shift - offset + length]
        out = res if out is None else out.add_(res)
    return out.div_(shifts)
