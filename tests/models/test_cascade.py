"""cascade: config validation, shapes, stems sum to the mixture, the vocals stem is the vocals model's, the splitter
sees the mixture minus the vocals, joint Wiener refinement, checkpoint round trip."""
from __future__ import annotations

import pytest
import torch

from stemwright.models.cascade import Cascade, CascadeConfig
from stemwright.models.checkpoint import load_checkpoint, save_checkpoint
from stemwright.models.classic import ClassicConfig, ClassicSeparator
from stemwright.models.refiner import ClassicRefiner, ClassicRefinerConfig
from tests.models.tiny_cascade import SPLITTER, SR, VOCALS, tiny_cascade_config


def _song(seconds: float = 2.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    t = torch.arange(int(seconds * SR)) / SR
    voice = 0.3 * torch.sin(2 * torch.pi * 330 * t * (1 + 0.02 * torch.sin(5 * t)))
    bass = 0.3 * torch.sin(2 * torch.pi * 55 * t)
    clicks = (torch.rand(t.shape, generator=g) > 0.999).float()
    left = voice + bass + clicks + 0.01 * torch.randn(t.shape, generator=g)
    right = voice + 0.7 * bass + clicks + 0.01 * torch.randn(t.shape, generator=g)
    return torch.stack([left, right]).unsqueeze(0)


def _trained(model: Cascade) -> Cascade:
    """Random corrections in the splitter (an untrained refiner would just be classic)."""
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.splitter.delta_heads.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model.eval()


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="CascadeConfig.vocals must be"):
        CascadeConfig(vocals={"architecture": "classic"}, splitter={"architecture": "classic", "config": {}})
    with pytest.raises(ValueError, match="wiener_iterations"):
        tiny_cascade_config(wiener_iterations=-1)
    with pytest.raises(ValueError, match="segment"):
        tiny_cascade_config(segment=0.0)
    with pytest.raises(ValueError, match="must not produce 'vocals'"):
        Cascade(CascadeConfig(vocals={"architecture": "classic", "config": dict(VOCALS)},
                              splitter={"architecture": "classic", "config": dict(VOCALS)}))
    with pytest.raises(ValueError, match="residual_source 'guitar'"):
        Cascade(tiny_cascade_config(residual_source="guitar"))


def test_shapes_sum_and_members():
    model = _trained(Cascade(tiny_cascade_config()))
    assert model.sources == ("vocals", "drums", "bass", "other")
    assert (model.samplerate, model.audio_channels, model.segment) == (SR, 2, 4.0)
    mix = _song()
    before = mix.clone()
    with torch.inference_mode():
        y = model(mix)
        vocals_ref = ClassicSeparator(ClassicConfig(**VOCALS))(mix)[:, 0]
        split_ref = model.splitter(mix - vocals_ref)
    assert torch.equal(mix, before)  # the caller's tensor is not modified
    assert y.shape == (1, 4, 2, mix.shape[-1])
    assert torch.allclose(y.sum(1), mix, atol=1e-5)
    assert torch.allclose(y[:, 0], vocals_ref, atol=1e-6)  # vocals: the vocals model's stem as it is
    assert torch.allclose(y[:, 1:3], split_ref[:, :2], atol=1e-6)  # drums, bass: the splitter's, on mix - vocals
    assert torch.allclose(y[:, 3], mix - y[:, :3].sum(1), atol=1e-6)  # other absorbs the residual
    assert all(y[:, i].abs().max() > 1e-3 for i in range(4))


def test_batch_items_are_independent():
    model = _trained(Cascade(tiny_cascade_config()))
    mix = _song(1.5)
    pair = torch.cat([mix, 0.5 * mix.flip(-1)])
    with torch.inference_mode():
        y2, y1 = model(pair), model(mix)
    assert torch.allclose(y2[:1], y1, atol=1e-5)


def test_wiener_refinement_changes_stems_and_keeps_the_sum():
    plain = _trained(Cascade(tiny_cascade_config()))
    refined = Cascade(tiny_cascade_config(wiener_iterations=1, wiener_n_fft=512, wiener_hop=128))
    refined.load_state_dict(plain.state_dict())
    mix = _song()
    with torch.inference_mode():
        a, b = plain(mix), refined.eval()(mix)
    assert torch.allclose(b.sum(1), mix, atol=1e-5)
    assert (a - b).abs().max() > 1e-4


def test_from_models_and_checkpoint_round_trip(tmp_path):
    vocals = ClassicSeparator(ClassicConfig(**VOCALS))
    splitter = ClassicRefiner(ClassicRefinerConfig(**SPLITTER))
    with torch.no_grad():
        for p in splitter.delta_heads.parameters():
            p.add_(0.05 * torch.randn_like(p))
    model = Cascade.from_models(vocals, splitter).eval()
    assert model.splitter is not splitter
    for k, v in splitter.state_dict().items():
        assert torch.equal(model.state_dict()[f"splitter.{k}"], v)
    shared = Cascade.from_models(vocals, splitter, copy=False)
    assert shared.splitter is splitter and shared.vocals is vocals
    with pytest.raises(ValueError, match="do not match"):
        Cascade(shared.config, members=(splitter, vocals))
    save_checkpoint(model, tmp_path / "c", licence="test")
    loaded = load_checkpoint(tmp_path / "c")
    assert isinstance(loaded, Cascade) and loaded.config == model.config
    mix = _song(1.0)
    with torch.inference_mode():
        assert torch.equal(loaded(mix), model(mix))


def test_engine_runs_the_cascade_in_chunks():
    from stemwright.engine.run import separate_tensor

    model = _trained(Cascade(tiny_cascade_config(segment=1.0)))
    mix = _song(2.5)[0]
    out = separate_tensor(model, mix)
    assert out.shape == (4, 2, mix.shape[-1])
    assert torch.allclose(out.sum(0), mix, atol=1e-4)


def test_spleeter_vocals_member_inverts_the_vocals_alone_with_the_same_stems():
    # A Spleeter member gives its vocals through forward_sources (no accompaniment iSTFT): the stems equal the ones
    # composed from its full forward, bit for bit.
    from tests.spleeter_reference import tiny_spleeter

    vocals = tiny_spleeter(seed=1, samplerate=SR)
    model = Cascade.from_models(vocals, ClassicRefiner(ClassicRefinerConfig(**SPLITTER)), copy=False).eval()
    calls = []
    vocals.register_forward_hook(lambda *a: calls.append(1))  # forward (all stems) must not run
    mix = _song()
    with torch.inference_mode():
        y = model(mix)
        assert not calls
        v = vocals(mix)[:, 0]
        ref = model.splitter(mix - v)
    assert torch.equal(y[:, 0], v) and torch.equal(y[:, 1:3], ref[:, :2])
