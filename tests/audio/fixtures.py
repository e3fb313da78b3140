"""Audio fixtures made inside the tests (soundfile / PyAV), never downloaded."""
from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import soundfile as sf

SR = 44100


def tone(seconds: float = 0.5, sr: int = SR, channels: int = 2) -> np.ndarray:
    """A distinct sine per channel, peak 0.5. Shape: ``(channels, T)`` float32."""
    t = np.arange(int(seconds * sr)) / sr
    return np.stack([0.5 * np.sin(2 * np.pi * (330 + 110 * c) * t) for c in range(channels)]).astype(np.float32)


def write_av(path: Path, streams: list[np.ndarray], sr: int = SR, fmt: str = "mp4", codec: str = "aac") -> Path:
    """Encode one or more stereo streams with PyAV (e.g. an NI .stem.mp4: stream 0 is the mixture)."""
    with av.open(str(path), "w", format=fmt) as out:
        encoders = []
        for _ in streams:
            s = out.add_stream(codec, rate=sr)
            s.layout = "stereo"
            encoders.append(s)
        for s, x in zip(encoders, streams):
            for i in range(0, x.shape[1], 1024):
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(x[:, i : i + 1024]), format="fltp", layout="stereo")
                frame.sample_rate = sr
                frame.pts = i
                for p in s.encode(frame):
                    out.mux(p)
            for p in s.encode(None):
                out.mux(p)
    return path


def write_sf(path: Path, x: np.ndarray, sr: int = SR, **kw) -> Path:
    sf.write(str(path), x.T, sr, **kw)
    return path
