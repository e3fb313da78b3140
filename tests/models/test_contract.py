"""The model contract (stemwright.models.base), checked for every registered architecture with a tiny config.

Per architecture: the config is a frozen keyword-only dataclass of the class's ``config_class``; the declared
attributes; ``forward`` maps ``(B, C, T)`` to ``(B, S, C, T)``, deterministically, without touching the caller's
input or writing to ``self``; a bit-exact checkpoint round trip; for staged models ``finish(core(*prepare(x)))``
equals ``forward`` and the ONNX export of the core matches torch. An architecture without an entry in
``tests.models.tiny.TINY_CONFIGS`` fails here.
"""
from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from stemwright.models.architectures import ARCHITECTURES, architecture_name
from stemwright.models.base import config_from_dict, config_to_dict, has_stages
from stemwright.models.checkpoint import load_checkpoint, save_checkpoint
from stemwright.models.onnx import OnnxModel, export_onnx
from tests.models.contract import changed_attributes, snapshot
from tests.models.tiny import TINY_CONFIGS, TINY_VARIANTS
from tests.reference import require

pytestmark = pytest.mark.usefixtures("one_thread")

ARCHS = sorted(ARCHITECTURES) + sorted(TINY_VARIANTS)  # variants: "<architecture>[<what differs>]"


def _base(arch: str) -> str:
    """The architecture name of a test id (``classic_refiner[6 stems]`` -> ``classic_refiner``)."""
    return arch.split("[")[0]


def _randomize_(model: nn.Module, seed: int) -> nn.Module:
    """Perturb every floating tensor of the state dict (normalisation statistics included), so that a round trip that
    dropped or swapped a tensor cannot go unnoticed. Variances stay positive. Non-persistent buffers (derived from
    the config, not saved) are left alone."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict(keep_vars=True).items():
            if not t.is_floating_point():
                continue
            noise = torch.rand(t.shape, generator=gen, dtype=t.dtype)
            if "running_var" in name:
                t.mul_(0.5 + noise)
            else:
                t.add_(0.05 * (2 * noise - 1))
    return model


@pytest.fixture(scope="module", params=ARCHS)
def arch(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def model(arch: str) -> nn.Module:
    configs = {**TINY_CONFIGS, **TINY_VARIANTS}
    if arch not in configs:
        pytest.fail(f"architecture {arch!r} has no tiny config: add one to TINY_CONFIGS in tests/models/tiny.py")
    torch.manual_seed(0)
    return _randomize_(ARCHITECTURES[_base(arch)](configs[arch]()), 1).eval()


def _mix(model: nn.Module, batch: int = 2, seconds: float = 0.3, seed: int = 0) -> torch.Tensor:
    n = int(seconds * model.samplerate) + 37  # not a multiple of any hop
    return 0.1 * torch.randn(batch, model.audio_channels, n, generator=torch.Generator().manual_seed(seed))


def test_the_write_checker_sees_writes():
    class Writer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("total", torch.zeros(1))
            self.calls = 0
            self.seen: list[int] = []

        def forward(self, x: torch.Tensor, how: str) -> torch.Tensor:
            if how == "counter":
                self.calls += 1
            elif how == "list":
                self.seen.append(1)
            elif how == "buffer":
                self.total += x.sum()
            elif how == "new":
                self.last = x
            return x

    for how in ("counter", "list", "buffer", "new"):
        m = Writer()
        before = snapshot(m)
        m(torch.ones(2), how)
        assert changed_attributes(before, snapshot(m)), how
    m = Writer()
    before = snapshot(m)
    m(torch.ones(2), "nothing")
    assert not changed_attributes(before, snapshot(m))


def test_every_registered_architecture_has_a_tiny_config():
    missing = sorted(set(ARCHITECTURES) - set(TINY_CONFIGS))
    assert not missing, f"add tiny configs to tests/models/tiny.py for {missing}"
    assert not set(TINY_CONFIGS) - set(ARCHITECTURES), "TINY_CONFIGS names an unregistered architecture"


def test_config_is_a_frozen_keyword_only_dataclass(arch, model):
    cls = ARCHITECTURES[_base(arch)]
    config = model.config
    assert isinstance(config, cls.config_class) and dataclasses.is_dataclass(config)
    params = type(config).__dataclass_params__
    assert params.frozen, f"{type(config).__name__} is not frozen"
    assert all(f.kw_only for f in dataclasses.fields(config)), f"{type(config).__name__} is not keyword-only"
    assert config_from_dict(cls.config_class, config_to_dict(config)) == config  # JSON round trip
    assert architecture_name(model) == _base(arch)


def test_declared_attributes(model):
    assert isinstance(model.sources, tuple) and model.sources
    assert all(isinstance(s, str) and s for s in model.sources) and len(set(model.sources)) == len(model.sources)
    assert isinstance(model.samplerate, int) and 8000 <= model.samplerate <= 192000
    assert model.audio_channels in (1, 2)
    assert model.segment is None or (isinstance(model.segment, float) and model.segment > 0)
    if hasattr(model, "valid_length"):
        assert all(model.valid_length(n) >= n for n in (1, 1000, 4410))


def test_forward_shape_determinism_input_untouched_and_no_writes_to_self(model):
    mix = _mix(model)
    before_mix = mix.clone()
    before = snapshot(model)
    with torch.no_grad():
        out = model(mix)
        again = model(mix)
    assert out.shape == (mix.shape[0], len(model.sources), model.audio_channels, mix.shape[-1])
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    assert torch.equal(out, again), "forward is not deterministic"
    assert torch.equal(mix, before_mix), "forward modified the caller's input"
    changed = changed_attributes(before, snapshot(model))
    assert not changed, f"forward wrote to self: {changed}"


def test_checkpoint_round_trip_is_bit_exact(arch, model, tmp_path):
    meta = save_checkpoint(model, tmp_path / "m", licence="MIT", training={"data": "none (random)"})
    loaded = load_checkpoint(meta)
    assert type(loaded) is type(model) and loaded.config == model.config and not loaded.training
    a, b = model.state_dict(), loaded.state_dict()
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)
    mix = _mix(model, batch=1, seed=3)
    with torch.no_grad():
        assert torch.equal(model(mix), loaded(mix))


def test_stages_compose_to_forward(model):
    if not has_stages(model):
        pytest.skip(f"{type(model).__name__} is not a staged model (prepare / core / finish)")
    mix = _mix(model, seed=4)
    with torch.no_grad():
        inputs, context = model.prepare(mix)
        assert isinstance(inputs, tuple) and all(not t.is_complex() for t in inputs)
        staged = model.finish(model.core(*inputs), context)
        assert torch.equal(staged, model(mix))


def test_onnx_export_of_the_core_matches_torch(model, tmp_path):
    if not has_stages(model):
        pytest.skip(f"{type(model).__name__} is not a staged model: no core to export")
    require("onnxruntime")
    path = export_onnx(model, tmp_path / "m.onnx", seconds=0.25)  # also checks ORT vs torch on another length
    exported = OnnxModel(path)
    assert (exported.sources, exported.samplerate, exported.audio_channels) == (
        model.sources, model.samplerate, model.audio_channels)
    mix = _mix(model, seed=5)
    with torch.no_grad():
        assert float((exported(mix) - model(mix)).abs().max()) <= 1e-4
