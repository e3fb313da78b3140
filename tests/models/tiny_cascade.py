"""A tiny ``cascade`` config (16 kHz, small STFTs) for tests: vocals from ``classic`` (vocals/other), then a
``classic_refiner`` drums/bass/other splitter with a 2-band, 8-wide BSRNN correction."""
from __future__ import annotations

from stemwright.models.cascade import CascadeConfig

SR = 16000

SPLITTER = {
    "samplerate": SR,
    "sources": ("drums", "bass", "other"),
    "n_fft": 512,
    "hop_length": 256,
    "band_widths": (64, 193),
    "feature_dim": 8,
    "hidden_dim": 8,
    "num_layers": 1,
    "mlp_dim": 8,
    "segment": 4.0,
}
VOCALS = {"samplerate": SR, "sources": ("vocals", "other"), "n_fft": 512, "hop_length": 256, "segment": 4.0}


def tiny_cascade_config(**options) -> CascadeConfig:
    """The tiny cascade; ``options`` replace :class:`CascadeConfig` fields."""
    return CascadeConfig(
        vocals={"architecture": "classic", "config": dict(VOCALS)},
        splitter={"architecture": "classic_refiner", "config": dict(SPLITTER)},
        **options,
    )
