"""Folding more than two channels down to stereo.

5.0, 5.1 and 7.1 use the ITU-R BS.775 downmix (Recommendation ITU-R BS.775-3, table 2: Lo = L + 0.7071 C +
0.7071 Ls, Ro = R + 0.7071 C + 0.7071 Rs; the LFE channel is dropped, as the Recommendation does). For 7.1 the
side and back surrounds both enter with 0.7071, as FFmpeg's and Dolby's 7.1 -> 2.0 downmixes do. The channel
order is the WAV/SMPTE order that libsndfile and FFmpeg decode to: L R C LFE Ls Rs (5.1), L R C LFE Lb Rb Ls Rs
(7.1), L R C Ls Rs (5.0). Other layouts (3, 4, 7 or more than 8 channels) have no single convention: they become
the mean of all channels in both sides (and the caller warns that the stereo image is lost).
No normalisation: the coefficients can add up above full scale; the write-time clip policy deals with peaks.
"""
from __future__ import annotations

import numpy as np

_K = np.float32(0.70710678)  # -3 dB, ITU-R BS.775
# channel count -> (left weights, right weights), in the decoders' channel order (see the module docstring)
_ITU: dict[int, tuple[tuple[float, ...], tuple[float, ...]]] = {
    5: ((1, 0, _K, _K, 0), (0, 1, _K, 0, _K)),  # L R C Ls Rs
    6: ((1, 0, _K, 0, _K, 0), (0, 1, _K, 0, 0, _K)),  # L R C LFE Ls Rs
    8: ((1, 0, _K, 0, _K, 0, _K, 0), (0, 1, _K, 0, 0, _K, 0, _K)),  # L R C LFE Lb Rb Ls Rs
}
LAYOUT_NAMES = {5: "5.0", 6: "5.1", 8: "7.1"}


def downmix_description(channels: int) -> str:
    """How :func:`downmix_to_stereo` folds ``channels`` channels, for warnings and manifests."""
    if channels in _ITU:
        return f"{LAYOUT_NAMES[channels]} downmixed to stereo (ITU-R BS.775, LFE dropped)"
    return f"{channels}-channel input downmixed to stereo (no standard layout: mean of all channels in both)"


def downmix_to_stereo(x: np.ndarray) -> np.ndarray:
    """Fold ``(C, T)`` with ``C > 2`` to ``(2, T)`` float32 (see the module docstring). Returns a new array."""
    if x.ndim != 2 or x.shape[0] <= 2:
        raise ValueError(f"downmix needs (channels > 2, time) audio, got shape {x.shape}")
    weights = _ITU.get(x.shape[0])
    if weights is None:
        return np.repeat(x.mean(axis=0, keepdims=True), 2, axis=0).astype(np.float32)
    w = np.asarray(weights, dtype=np.float32)  # (2, C)
    return (w @ x.astype(np.float32, copy=False)).astype(np.float32, copy=False)
