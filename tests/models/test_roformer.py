"""BS-RoFormer / Mel-Band RoFormer: config validation, shapes, contract, checkpoint round trip, and parity with the
reference ``bs-roformer`` package (test-only dependency, pinned in scripts/requirements-parity.txt).

Parity is proven two ways on 10 s of real stereo music at 44.1 kHz with the published STFT settings
(n_fft 2048, hop 441; 62 bands / 60 mel bands) and small random weights:

1. one 2 s segment processed whole by both models;
2. the whole 10 s through stemwright's engine (``separate_tensor``, 2 s chunks, overlap 0.25), where the reference model
   is wrapped in the engine's model contract so that both see exactly the same chunks and the same overlap-add.

The reference models return ``hop * (T // hop)`` samples (their iSTFT has no ``length``); stemwright's models declare
``valid_length`` = whole hops, so the engine hands both models chunks of whole hops (padded with real neighbouring
audio, the last, shorter chunk included) and trims the outputs back; the adapter gives the reference the same
``valid_length``.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from stemwright.engine.run import separate_tensor
from stemwright.models.architectures import architecture_class
from stemwright.models.roformer import (
    DEFAULT_FREQS_PER_BANDS,
    BSRoformer,
    BSRoformerConfig,
    MelRoformer,
    MelRoformerConfig,
    mel_band_layout,
)
from tests.models.tiny import TINY_ROFORMER, TINY_ROFORMER_BANDS
from tests.reference import require

TINY = TINY_ROFORMER
TINY_BANDS = TINY_ROFORMER_BANDS


def tiny_bs(**kw) -> BSRoformer:
    return BSRoformer(BSRoformerConfig(**{**TINY, "freqs_per_bands": TINY_BANDS, **kw})).eval()


def tiny_mel(**kw) -> MelRoformer:
    return MelRoformer(MelRoformerConfig(**{**TINY, "num_bands": 8, **kw})).eval()


# ---------------------------------------------------------------------------------------------- configs
def test_band_widths_must_cover_every_bin():
    with pytest.raises(ValueError, match=r"freqs_per_bands sums to 128 bins.*129 STFT bins"):
        BSRoformerConfig(**{**TINY, "freqs_per_bands": (32, 32, 32, 32)})
    assert sum(DEFAULT_FREQS_PER_BANDS) == BSRoformerConfig().n_bins == 1025


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("audio_channels", 3, "audio_channels must be 1 or 2"),
        ("dim", 0, "dim must be a positive integer"),
        ("sources", (), "sources must be a non-empty"),
        ("sources", ("a", "a"), "duplicates"),
        ("win_length", 512, "must not exceed n_fft"),
        ("attn_dropout", 1.0, r"attn_dropout must be in \[0, 1\)"),
        ("segment", -1.0, "segment must be positive"),
    ],
)
def test_config_errors_name_the_field(field, value, message):
    with pytest.raises(ValueError, match=message):
        BSRoformerConfig(**{**TINY, "freqs_per_bands": TINY_BANDS, field: value})


def test_configs_are_frozen_and_keyword_only():
    cfg = BSRoformerConfig()
    with pytest.raises(Exception):
        cfg.dim = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        BSRoformerConfig(("vocals",))  # type: ignore[misc]


def test_mel_bands_must_cover_every_bin():
    with pytest.raises(ValueError, match="(in no band|with no STFT bin)"):
        MelRoformer(MelRoformerConfig(**{**TINY, "num_bands": 120}))


def test_mel_layout_matches_paper_rules():
    layout = mel_band_layout(60, 2048, 44100)
    assert layout.shape == (60, 1025)
    assert bool(layout.any(dim=0).all())
    counts = layout.sum(dim=0)
    assert int(counts.max()) == 2  # neighbouring mel triangles overlap, nothing else does


# ---------------------------------------------------------------------------------------------- contract
@pytest.mark.parametrize("build", [tiny_bs, tiny_mel], ids=["bs", "mel"])
@pytest.mark.parametrize("channels,sources", [(1, ("vocals",)), (2, ("vocals", "drums", "bass"))])
def test_shapes_and_contract(build, channels, sources):
    torch.manual_seed(0)
    model = build(audio_channels=channels, sources=sources)
    assert model.sources == sources and model.audio_channels == channels and model.samplerate == 44100
    mix = torch.randn(2, channels, 1000)  # not a multiple of the hop
    before = mix.clone()
    with torch.no_grad():
        out = model(mix)
    assert out.shape == (2, len(sources), channels, 1000)
    assert torch.isfinite(out).all()
    assert torch.equal(mix, before)


@pytest.mark.parametrize("build", [tiny_bs, tiny_mel], ids=["bs", "mel"])
def test_forward_writes_nothing_to_self(build):
    model = build().train()
    attrs = dict(vars(model))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    out = model(torch.randn(1, 2, 640))
    out.sum().backward()  # training mode: gradients flow, no loss inside forward
    assert dict(vars(model)) == attrs
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert model.band_split.to_features[0][1].weight.grad is not None


def test_wrong_channel_count_or_too_short_input_is_a_clear_error():
    with pytest.raises(ValueError, match=r"expects \(batch, 2, time\)"):
        tiny_bs()(torch.randn(1, 1, 640))
    with pytest.raises(ValueError, match=r"needs more than n_fft/2 = 128 samples, got 21"):
        tiny_bs()(torch.randn(1, 2, 21))


def test_valid_length_is_whole_hops_above_half_a_frame():
    model = tiny_bs()  # n_fft 256, hop 64
    assert [model.valid_length(n) for n in (1, 128, 129, 640, 641)] == [192, 192, 192, 640, 704]
    mix = torch.randn(2, 5000)  # the engine's last chunk is short: it gets padded with context and trimmed
    out = separate_tensor(model, mix, segment=0.05, overlap=0.25)
    assert out.shape == (1, 2, 5000) and torch.isfinite(out).all()


def test_registered_under_their_architecture_names():
    assert architecture_class("bs_roformer") is BSRoformer
    assert architecture_class("mel_roformer") is MelRoformer


# ---------------------------------------------------------------------------------------------- ONNX
@pytest.mark.parametrize("build", [tiny_bs, tiny_mel], ids=["bs", "mel"])
def test_onnx_core_matches_torch_through_the_engine(build, tmp_path):
    require("onnxruntime")
    from stemwright.models.onnx import OnnxModel, export_onnx

    torch.manual_seed(5)
    model = build(sources=("vocals", "other"), segment=0.5)
    path = export_onnx(model, tmp_path / "roformer.onnx", seconds=0.5)  # also checks ORT vs torch on another length
    onnx_model = OnnxModel(path)
    assert onnx_model.sources == model.sources and onnx_model.segment == 0.5
    mix = torch.randn(2, 66150 + 17, generator=torch.Generator().manual_seed(0))  # 1.5 s: 4 chunks, the last short
    expected = separate_tensor(model, mix, overlap=0.25)
    got = separate_tensor(onnx_model, mix, overlap=0.25)
    assert got.shape == expected.shape == (2, 2, mix.shape[-1])
    assert float((got - expected).abs().max()) <= 1e-4


# ---------------------------------------------------------------------------------------------- parity
SR = 44100
SEGMENT_SAMPLES = 200 * 441  # 2 s, a multiple of the hop (see module docstring)
SMALL = dict(dim=16, depth=2, time_transformer_depth=1, freq_transformer_depth=1, dim_head=8, heads=2,
             stft_n_fft=2048, stft_hop_length=441, stft_win_length=2048)


class ReferenceAdapter(nn.Module):
    """The reference model dressed in stemwright's model contract, so the engine chunks it like ours."""

    def __init__(self, ref: nn.Module, sources: tuple[str, ...], valid_length) -> None:
        super().__init__()
        self.ref = ref
        self.sources = sources
        self.samplerate = SR
        self.audio_channels = 2
        self.segment = SEGMENT_SAMPLES / SR
        self.valid_length = valid_length

    def forward(self, mix: torch.Tensor) -> torch.Tensor:
        out = self.ref(mix)
        return out if out.dim() == 4 else out.unsqueeze(1)


@pytest.fixture(scope="module")
def music(shared_data) -> torch.Tensor:
    """10 s of real stereo music at 44.1 kHz. Shape: (2, 441000)."""
    from stemwright.audio.io import read_audio
    from stemwright.audio.resample import resample

    audio = read_audio(shared_data / "mixtures" / "singularity_Awakening_MaxMcCracken_CC-BY-SA-3.0.ogg")
    start = 30 * audio.samplerate
    excerpt = audio.samples[:, start : start + 11 * audio.samplerate]
    return torch.from_numpy(np.ascontiguousarray(resample(excerpt, audio.samplerate, SR)[:, : 10 * SR]))


def _reference(kind: str, n_sources: int) -> nn.Module:
    bs_roformer = require("bs_roformer")
    torch.manual_seed(1234)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind == "bs":
            return bs_roformer.BSRoformer(stereo=True, num_stems=n_sources, freqs_per_bands=DEFAULT_FREQS_PER_BANDS,
                                          mask_estimator_depth=2, **SMALL).eval()
        return bs_roformer.MelBandRoformer(stereo=True, num_stems=n_sources, num_bands=60, sample_rate=SR,
                                           mask_estimator_depth=1, attn_dropout=0.0, ff_dropout=0.0, **SMALL).eval()


def _ours(kind: str, sources: tuple[str, ...]) -> nn.Module:
    common = dict(sources=sources, samplerate=SR, audio_channels=2, segment=SEGMENT_SAMPLES / SR, dim=16, depth=2,
                  dim_head=8, heads=2, n_fft=2048, hop_length=441, win_length=2048)
    if kind == "bs":
        return BSRoformer(BSRoformerConfig(freqs_per_bands=DEFAULT_FREQS_PER_BANDS, mask_estimator_depth=2, **common))
    return MelRoformer(MelRoformerConfig(num_bands=60, mask_estimator_depth=1, **common))


@pytest.mark.parity
@pytest.mark.slow
@pytest.mark.parametrize("kind,sources", [("bs", ("vocals", "other")), ("mel", ("vocals",))])
def test_parity_with_reference_package(kind, sources, music):
    ref = _reference(kind, len(sources))
    ours = _ours(kind, sources).eval()
    ours.load_state_dict(ref.state_dict(), strict=True)  # the reference's key names load as they are

    # 1. one segment processed whole by both
    seg = music[None, :, :SEGMENT_SAMPLES]
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = ReferenceAdapter(ref, sources, ours.valid_length)(seg)
        got = ours(seg)
    assert got.shape == expected.shape == (1, len(sources), 2, SEGMENT_SAMPLES)
    assert float(expected.abs().max()) > 1e-3  # a non-trivial output
    assert float((got - expected).abs().max()) <= 1e-4

    # 2. the full 10 s through the engine, same chunking and overlap for both
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = separate_tensor(ReferenceAdapter(ref, sources, ours.valid_length), music, overlap=0.25)
        got = separate_tensor(ours, music, overlap=0.25)
    assert got.shape == expected.shape == (len(sources), 2, music.shape[-1])
    assert float((got - expected).abs().max()) <= 1e-4
