"""HT Demucs / Hybrid Demucs / bags: parity with the reference ``demucs`` 4.1.0 package, shapes, contract,
checkpoint round trip.

Parity: the reference model is built with a fixed seed, its ``state_dict`` is loaded strictly into stemwright's
model (so the key names match), then ``demucs.apply.apply_model(model, mix, shifts=0)`` is compared with
``stemwright.engine.run.separate_tensor`` on 10 s of real stereo music (chunking and overlap included).
"""
from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch

from stemwright.engine.run import separate_tensor
from stemwright.models.bag import BagConfig, BagOfModels
from stemwright.models.base import config_to_dict
from stemwright.models.hdemucs import HDemucs, HDemucsConfig
from stemwright.models.htdemucs import PUBLISHED, HTDemucs, HTDemucsConfig
from stemwright.models.architectures import architecture_class
from stemwright.models.umx import OpenUnmix, UmxConfig
from tests.models.demucs_reference import demucs_kwargs, demucs_modules
from tests.models.tiny import TINY_H, TINY_HT

SR = 44100
TOL = 1e-4

pytestmark = pytest.mark.usefixtures("one_thread")


def reference_and_ours(config, seed: int = 0):
    """A reference demucs model with random weights and stemwright's model with the same weights (strict load)."""
    dm = demucs_modules()
    torch.manual_seed(seed)
    klass = dm.htdemucs.HTDemucs if isinstance(config, HTDemucsConfig) else dm.hdemucs.HDemucs
    ref = klass(**demucs_kwargs(config)).eval()
    ours = architecture_class("htdemucs" if isinstance(config, HTDemucsConfig) else "hdemucs")(config).eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    return ref, ours


@pytest.fixture(scope="module")
def music(shared_data) -> torch.Tensor:
    """10 s of real stereo music at 44.1 kHz. Shape: (2, 441000)."""
    from stemwright.audio.io import read_audio
    from stemwright.audio.resample import resample

    audio = read_audio(shared_data / "mixtures" / "singularity_ChimesTheyFade_MaxMcCracken_CC-BY-SA-3.0.ogg")
    start = 20 * audio.samplerate
    excerpt = audio.samples[:, start : start + 11 * audio.samplerate]
    if audio.samplerate != SR:
        excerpt = resample(excerpt, audio.samplerate, SR)
    return torch.from_numpy(np.ascontiguousarray(excerpt[:, : 10 * SR]))


def assert_engine_parity(ref, ours, music: torch.Tensor, overlap: float = 0.25) -> None:
    dm = demucs_modules()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = dm.apply.apply_model(ref, music[None], shifts=0, overlap=overlap, split=True)[0]
    got = separate_tensor(ours, music, overlap=overlap)
    assert got.shape == expected.shape == (len(ours.sources), 2, music.shape[-1])
    err = float((got - expected).abs().max())
    assert err <= TOL, f"max abs error {err:.3g} > {TOL}"
    assert float(expected.abs().max()) > 1e-3  # the comparison is not between two silences


# ----------------------------------------------------------------------------------------------------- parity


@pytest.mark.parity
def test_tiny_htdemucs_forward_is_identical_to_reference():
    ref, ours = reference_and_ours(HTDemucsConfig(**TINY_HT))
    assert set(ref.state_dict()) == set(ours.state_dict())
    x = torch.randn(2, 2, 30000, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert float((ref(x) - ours(x)).abs().max()) <= 1e-6


@pytest.mark.parity
@pytest.mark.parametrize("overlap", [0.25, 0.5])
def test_tiny_htdemucs_engine_parity(music, overlap):
    ref, ours = reference_and_ours(HTDemucsConfig(**TINY_HT))
    assert_engine_parity(ref, ours, music, overlap)


@pytest.mark.parity
def test_tiny_htdemucs_cape_and_scaled_embeddings():
    for emb in ("cape", "scaled"):
        ref, ours = reference_and_ours(HTDemucsConfig(**{**TINY_HT, "t_emb": emb, "t_cross_first": True}))
        x = torch.randn(1, 2, 20000, generator=torch.Generator().manual_seed(2))
        with torch.no_grad():
            assert float((ref(x) - ours(x)).abs().max()) <= 1e-6, emb


@pytest.mark.parity
def test_tiny_hdemucs_engine_parity_with_short_last_chunk(music):
    """HDemucs has no valid_length in demucs: each chunk (the last, shorter one included) runs at its own
    length, which the engine must reproduce."""
    ref, ours = reference_and_ours(HDemucsConfig(**TINY_H))
    assert_engine_parity(ref, ours, music)


@pytest.mark.parity
def test_tiny_bag_engine_parity(music):
    dm = demucs_modules()
    cfg = HTDemucsConfig(**TINY_HT)
    refs, ours = zip(*(reference_and_ours(cfg, seed) for seed in (3, 4)))
    weights = [[1.0, 0.5, 0.0, 2.0], [1.0, 1.5, 1.0, 0.0]]
    # bag segment shorter than the members' (demucs applies it: each HTDemucs then runs at 0.8 s)
    ref_bag = dm.apply.BagOfModels([copy.deepcopy(r) for r in refs], weights, segment=0.8)
    bag = BagOfModels.from_models(ours, weights=weights, segment=0.8).eval()
    assert bag.segment == 0.8 and all(m.segment == 0.8 for m in bag.models)
    assert_engine_parity(ref_bag, bag, music)


@pytest.mark.parity
@pytest.mark.slow
@pytest.mark.parametrize("name", ["htdemucs", "htdemucs_6s"])
def test_published_htdemucs_configs_engine_parity(music, name):
    ref, ours = reference_and_ours(PUBLISHED[name], seed=5)
    n_params = sum(p.numel() for p in ours.parameters())
    assert n_params == {"htdemucs": 41_984_456, "htdemucs_6s": 27_414_996}[name]
    assert_engine_parity(ref, ours, music)


@pytest.mark.parity
@pytest.mark.slow
def test_published_hdemucs_mmi_config_engine_parity(music):
    ref, ours = reference_and_ours(HDemucsConfig(dconv_init=1e-3, segment=44.0), seed=6)
    assert sum(p.numel() for p in ours.parameters()) == 83_637_832
    assert_engine_parity(ref, ours, music)


# ----------------------------------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("length", [1000, 30000, 44100])
def test_htdemucs_shapes(length):
    torch.manual_seed(0)
    model = HTDemucs(HTDemucsConfig(**TINY_HT)).eval()
    with torch.no_grad():
        out = model(torch.randn(3, 2, length))
    assert out.shape == (3, 4, 2, length)
    assert model.valid_length(length) == 44100
    with pytest.raises(ValueError, match="longer than the training length"):
        model.valid_length(44101)


@pytest.mark.parametrize("length", [1000, 12345, 44100])
def test_hdemucs_shapes_any_length(length):
    torch.manual_seed(0)
    model = HDemucs(HDemucsConfig(**{**TINY_H, "sources": ("a", "b"), "audio_channels": 1})).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 1, length))
    assert out.shape == (2, 2, 1, length)
    assert model.valid_length(length) == length


def test_htdemucs_without_transformer_and_mono():
    model = HTDemucs(HTDemucsConfig(**{**TINY_HT, "t_layers": 0, "audio_channels": 1, "sources": ("x",)})).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 1, 5000)).shape == (1, 1, 1, 5000)


def test_published_configs_describe_the_released_models():
    ht, six = PUBLISHED["htdemucs"], PUBLISHED["htdemucs_6s"]
    assert ht.sources == ("drums", "bass", "other", "vocals") and ht.bottom_channels == 512 and ht.dconv_mode == 3
    assert six.sources[-2:] == ("guitar", "piano") and six.bottom_channels == 0
    assert HTDemucs(ht).valid_length(10) == 343980  # Fraction(39, 5) s at 44.1 kHz


@pytest.mark.parametrize(
    "change,message",
    [
        ({"cac": False}, "cac=False"),
        ({"multi_freqs": (0.5,)}, "multi_freqs"),
        ({"t_sparse_self_attn": True}, "sparse attention"),
        ({"sources": ()}, "sources"),
        ({"sources": ("a", "a")}, "sources"),
        ({"nfft": 1000}, "nfft"),
        ({"t_heads": 3}, "t_heads"),
        ({"t_emb": "rope"}, "t_emb"),
        ({"segment": -1.0}, "segment"),
        ({"depth": 6, "nfft": 512}, "too deep"),
    ],
)
def test_config_validation(change, message):
    with pytest.raises(ValueError, match=message):
        HTDemucsConfig(**{**TINY_HT, **change})


def test_bag_validation():
    member = {"architecture": "htdemucs", "config": config_to_dict(HTDemucsConfig(**TINY_HT))}
    with pytest.raises(ValueError, match="total weight 0"):
        BagConfig(members=(member, member), weights=((1, 0, 0, 0), (1, 0, 0, 0)))
    with pytest.raises(ValueError, match="rows"):
        BagConfig(members=(member,), weights=((1, 1, 1, 1), (1, 1, 1, 1)))
    other = {"architecture": "htdemucs", "config": config_to_dict(HTDemucsConfig(**{**TINY_HT, "segment": 0.5}))}
    with pytest.raises(ValueError, match="different segments"):
        BagOfModels(BagConfig(members=(member, other)))
    with pytest.raises(ValueError, match="cannot be a bag member"):
        BagConfig(members=({"architecture": "umx", "config": {}},))


def test_bag_members_are_demucs_models():
    with pytest.raises(ValueError, match="bag member 1 is a OpenUnmix"):
        BagOfModels.from_models([HTDemucs(HTDemucsConfig(**TINY_HT)), OpenUnmix(UmxConfig())])
