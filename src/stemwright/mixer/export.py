"""Exports of a separated song for other software: NI Stems (``.stem.mp4``) for Traktor, Mixxx and other DJ tools."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from stemwright.audio.io import read_audio
from stemwright.audio.nistems import DEFAULT_BITRATE, NI_SLOTS, NiStemsError, group_stems, write_ni_stems
from stemwright.audio.resample import resample
from stemwright.mixer.stems import StemSet, as_stemset

log = logging.getLogger(__name__)


def _mixture(stems: StemSet, mixture: str | Path | None) -> tuple[np.ndarray, str]:
    """The mixture track: the given file, else the folder's ``mixture.*``, else the sum of the stems.
    Shape ``(C, T)`` at the stems' rate and length (a file up to 1 % longer or shorter is trimmed or padded)."""
    path = Path(mixture) if mixture is not None else stems.mixture_path
    total = np.zeros((2, stems.length), np.float32)
    for x in stems.audio.values():
        total += x  # mono stems broadcast onto both channels
    if path is None:
        return total, "sum of the stems"
    a = read_audio(path)
    x = a.samples if a.samplerate == stems.samplerate else resample(a.samples, a.samplerate, stems.samplerate)
    if abs(x.shape[1] - stems.length) > 0.01 * stems.length:
        raise NiStemsError(f"{path}: the mixture lasts {x.shape[1] / stems.samplerate:.2f} s but the stems "
                           f"{stems.duration:.2f} s; is it the same song?")
    out = np.zeros((x.shape[0], stems.length), np.float32)
    out[:, :min(stems.length, x.shape[1])] = x[:, :stems.length]
    return out, str(path)


def export_ni_stems(stems: Any, out: str | Path, *, mixture: str | Path | None = None, codec: str = "aac",
                    bitrate: int = DEFAULT_BITRATE, overwrite: bool = False) -> dict[str, Any]:
    """Write a stems folder (or :class:`StemSet`) as an NI Stems file. Stems beyond drums, bass and vocals are
    summed into "other" (see :func:`stemwright.audio.nistems.group_stems`). Returns the writer's report plus
    ``groups`` (slot -> source stems) and ``mixture`` (where the mixture track came from)."""
    s = as_stemset(stems)
    groups = group_stems(s.names)
    slots = {}
    for slot in NI_SLOTS:
        parts = [s.audio[n] for n in groups[slot]]
        total = np.zeros((max(p.shape[0] for p in parts), s.length), np.float32)
        for p in parts:
            total += p
        slots[slot] = total
    folded = [n for n in groups["other"] if n != "other"]
    if folded:
        log.info("NI Stems: %s folded into 'other'", ", ".join(folded))
    mix, origin = _mixture(s, mixture)
    report = write_ni_stems(out, mix, slots, s.samplerate, codec=codec, bitrate=bitrate, overwrite=overwrite)
    return {**report, "groups": {k: list(v) for k, v in groups.items()}, "mixture": origin}

