"""Open-Unmix: equality with openunmix 1.3.0's Separator, published configurations, config validation, checkpoints."""
from __future__ import annotations

import pytest
import torch

from stemwright.engine.run import separate_tensor
from stemwright.models.base import check_model
from stemwright.models.umx import OpenUnmix, UmxConfig, build_umx
from stemwright.pretrained.umx_format import IGNORED_KEYS
from tests.models.umx_reference import import_openunmix, randomize_, reference_separator

SR = 44100

pytestmark = pytest.mark.usefixtures("one_thread")


def _from_reference(ref, **config) -> OpenUnmix:
    """stemwright's model holding the reference Separator's weights (its state dict minus STFT windows / rate)."""
    model = OpenUnmix(UmxConfig(**config))
    state = {k: v for k, v in ref.state_dict().items() if not IGNORED_KEYS.match(k)}
    model.load_state_dict(state, strict=True)
    return model.eval()


def _mix(seconds: float, channels: int = 2, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * SR)) / SR
    tones = sum(torch.sin(2 * torch.pi * f * t + p) for f, p in ((110.0, 0.0), (440.0, 1.0), (2500.0, 2.0)))
    return (0.2 * tones + 0.1 * torch.randn(channels, t.numel(), generator=gen)).float()


@pytest.mark.parity
def test_equals_openunmix_separator_through_engine():
    """10 s stereo, umxhq STFT/bandwidth/Wiener settings (small hidden size to keep it quick), 1 EM iteration over
    300-frame blocks: stemwright's engine (whole track in one call, as openunmix) == Separator."""
    ref = reference_separator(hidden_size=32, niter=1, wiener_win_len=300, seed=1)
    ours = _from_reference(ref, hidden_size=32, niter=1, wiener_win_len=300)
    mix = _mix(10.0)
    with torch.no_grad():
        expected = ref(mix[None])[0]
    # the model's segment is None: the engine runs the whole track in one call, as openunmix does.
    got = separate_tensor(ours, mix)
    assert got.shape == expected.shape == (4, 2, mix.shape[-1])
    assert (got - expected).abs().max().item() <= 1e-4


@pytest.mark.parity
@pytest.mark.parametrize(
    "channels,targets,niter,residual,softmask,win",
    [
        (2, ("vocals", "drums"), 2, True, True, None),
        (2, ("vocals",), 0, False, False, 300),
        (1, ("vocals", "other"), 1, True, False, 64),
    ],
)
def test_equals_openunmix_options(channels, targets, niter, residual, softmask, win):
    ref = reference_separator(targets=targets, nb_channels=channels, hidden_size=16, n_fft=2048, n_hop=512,
                              max_bin=700, niter=niter, residual=residual, softmask=softmask, wiener_win_len=win)
    ours = _from_reference(ref, sources=targets, audio_channels=channels, hidden_size=16, n_fft=2048, hop_length=512,
                           max_bin=700, niter=niter, residual=residual, softmask=softmask, wiener_win_len=win)
    mix = _mix(2.5, channels)[None]
    with torch.no_grad():
        expected = ref(mix)
        got = ours(mix)
    assert got.shape == expected.shape
    assert ours.sources == targets + (("residual",) if residual else ())
    assert (got - expected).abs().max().item() <= 1e-4


@pytest.mark.parity
@pytest.mark.parametrize("name,hidden", [("umxhq", 512), ("umxl", 1024)])
def test_published_configurations_match_reference_shapes(name, hidden):
    """The published networks: same state-dict keys and tensor shapes as openunmix's (so their .pth files load)."""
    ref_model = import_openunmix()
    ref = ref_model.OpenUnmix(nb_bins=2049, nb_channels=2, hidden_size=hidden, max_bin=1487)
    ours = OpenUnmix(UmxConfig(hidden_size=hidden))
    ref_shapes = {f"target_models.{s}.{k}": v.shape for s in ours.targets for k, v in ref.state_dict().items()}
    assert {k: v.shape for k, v in ours.state_dict().items()} == ref_shapes
    per_target = sum(p.numel() for p in ref.parameters())
    assert sum(p.numel() for p in ours.parameters()) == 4 * per_target


def test_contract_shapes_and_input_untouched():
    model = build_umx(hidden_size=8, n_fft=512, hop_length=128, max_bin=100, wiener_win_len=50)
    check_model(model)
    mix = _mix(0.5)[None].repeat(2, 1, 1)
    before = mix.clone()
    with torch.no_grad():
        out = model(mix)
    assert out.shape == (2, 4, 2, mix.shape[-1]) and out.dtype == torch.float32
    assert torch.equal(mix, before)
    assert model.segment is None and model.samplerate == 44100 and model.audio_channels == 2


def test_onnx_split_composes_to_forward():
    model = randomize_(build_umx(hidden_size=8, n_fft=512, hop_length=128, max_bin=100), 3).eval()
    mix = _mix(0.3)[None]
    with torch.no_grad():
        inputs, ctx = model.prepare(mix)
        assert torch.equal(model.finish(model.core(*inputs), ctx), model(mix))


@pytest.mark.parametrize(
    "fields,match",
    [
        ({"max_bin": 5000}, "max_bin"),
        ({"sources": ("vocals",), "niter": 1}, "two sources"),
        ({"hidden_size": 33}, "hidden_size"),
        ({"audio_channels": 3}, "audio_channels"),
        ({"sources": ("a", "a")}, "unique"),
        ({"wiener_win_len": 0}, "wiener_win_len"),
    ],
)
def test_config_validation(fields, match):
    with pytest.raises(ValueError, match=match):
        UmxConfig(**fields)

