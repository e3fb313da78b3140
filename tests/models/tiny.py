"""Tiny configurations of every architecture, for fast tests (the contract test runs each registered architecture
with its entry in :data:`TINY_CONFIGS`; a new family adds one entry there)."""
from __future__ import annotations

from typing import Any, Callable

from stemwright.models.bag import BagConfig
from stemwright.models.base import config_to_dict
from stemwright.models.bsrnn import BSRNNConfig
from stemwright.models.classic import ClassicConfig
from stemwright.models.hdemucs import HDemucsConfig
from stemwright.models.htdemucs import HTDemucsConfig
from stemwright.models.refiner import ClassicRefinerConfig
from stemwright.models.roformer import BSRoformerConfig, MelRoformerConfig
from stemwright.models.spleeter import SpleeterConfig
from stemwright.models.umx import UmxConfig
from tests.models.tiny_cascade import tiny_cascade_config
from tests.spleeter_reference import TINY_SPLEETER_CONFIG

TINY_HT = dict(sources=("drums", "bass", "other", "vocals"), channels=8, depth=4, nfft=2048, bottom_channels=16,
               t_layers=2, t_heads=2, segment=1.0, dconv_mode=3)
# nfft 1024 = hop 256 = 4**4: the time branch meets the frequency branch after 4 layers, then one time layer.
TINY_H = dict(sources=("drums", "bass", "other", "vocals"), channels=8, depth=5, nfft=1024, dconv_mode=3,
              dconv_lstm=3, dconv_attn=3, segment=3.0)
TINY_BSRNN = dict(sources=("vocals", "drums", "bass", "other"), samplerate=8000, n_fft=256, hop_length=64,
                  band_widths=(8, 8, 16, 32, 65), feature_dim=8, hidden_dim=8, num_layers=2, mlp_dim=16, segment=1.0)
TINY_REFINER = dict(samplerate=44100, n_fft=512, hop_length=256, band_widths=(16, 16, 32, 64, 129), feature_dim=8,
                    hidden_dim=8, num_layers=1, mlp_dim=8, segment=4.0)
TINY_ROFORMER = dict(dim=16, depth=1, dim_head=8, heads=2, n_fft=256, hop_length=64, win_length=256, segment=None)
TINY_ROFORMER_BANDS = (32, 32, 32, 33)  # 129 bins for n_fft 256
TINY_UMX = dict(hidden_size=8, n_fft=512, hop_length=128, max_bin=100)


def _bag() -> BagConfig:
    member = {"architecture": "htdemucs", "config": config_to_dict(HTDemucsConfig(**TINY_HT))}
    return BagConfig(members=(member, member), weights=((1, 0, 1, 0.5), (0, 1, 1, 0.5)))


#: architecture name -> a function returning a tiny config of it (one entry per registered architecture).
TINY_CONFIGS: dict[str, Callable[[], Any]] = {
    "classic": lambda: ClassicConfig(n_fft=1024, hop_length=256),
    "htdemucs": lambda: HTDemucsConfig(**TINY_HT),
    "hdemucs": lambda: HDemucsConfig(**TINY_H),
    "umx": lambda: UmxConfig(**TINY_UMX),
    "bsrnn": lambda: BSRNNConfig(**{**TINY_BSRNN, "complement_source": "other", "band_widths": (8, 8, 16, 32)}),
    "classic_refiner": lambda: ClassicRefinerConfig(**TINY_REFINER),
    "bs_roformer": lambda: BSRoformerConfig(**TINY_ROFORMER, freqs_per_bands=TINY_ROFORMER_BANDS),
    "mel_roformer": lambda: MelRoformerConfig(**TINY_ROFORMER, num_bands=8),
    "bag": _bag,
    "spleeter": lambda: SpleeterConfig(**TINY_SPLEETER_CONFIG),
    "cascade": tiny_cascade_config,
}

#: Further configs of registered architectures that the contract test checks too (id -> config): the 6-stem
#: instrument splitter, whose guitar/piano priors are shares of classic's "other" (models/refiner.py).
TINY_VARIANTS: dict[str, Callable[[], Any]] = {
    "classic_refiner[6 stems]": lambda: ClassicRefinerConfig(**TINY_REFINER, sources=("drums", "bass", "guitar", "piano", "other")),
}
