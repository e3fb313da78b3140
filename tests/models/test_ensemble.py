"""Ensembles across models (issue 28 part 5): MSST's combination methods, identity when the members agree, stems
aligned by name, the model contract, bounded memory through the streaming engine, and clear errors."""
from __future__ import annotations

import librosa
import numpy as np
import pytest
import torch
from torch import nn

import stemwright
from stemwright.engine.run import separate_tensor
from stemwright.models.architectures import ARCHITECTURES
from stemwright.models.ensemble import METHODS, Ensemble, EnsembleError, combine, parse_weights
from stemwright.pretrained.loading import is_ensemble_name, load_model
from tests.models.contract import changed_attributes, snapshot
from tests.models.tiny import TINY_CONFIGS

pytestmark = pytest.mark.usefixtures("one_thread")


def _tiny(name: str, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return ARCHITECTURES[name](TINY_CONFIGS[name]()).eval()


def _msst_reference(estimates: list[np.ndarray], weights: list[float], method: str) -> np.ndarray:
    """MSST ensemble.py's definitions written out with numpy and librosa's STFT (2048 / 1024, Hann, centred). MSST
    calls ``librosa.stft(wave, nfft, ...)`` positionally, which only librosa < 0.10 accepts, whose padding was
    ``reflect`` (0.10 changed the default to ``constant``): reflect here too."""
    x = np.stack(estimates)
    w = np.asarray(weights, dtype=np.float64)
    length = x.shape[-1]
    pick = lambda a, fn: np.take_along_axis(a, fn(np.abs(a), axis=0)[None], axis=0)[0]  # noqa: E731
    if method == "avg_wave":
        return (x * w[:, None, None]).sum(0) / w.sum()
    if method == "median_wave":
        return np.median(x, axis=0)
    if method in ("min_wave", "max_wave"):
        return pick(x, np.argmin if method == "min_wave" else np.argmax)
    spec = np.stack([librosa.stft(e, n_fft=2048, hop_length=1024, pad_mode="reflect") for e in estimates])  # (M, C, F, N)
    if method == "avg_fft":
        out = (spec * w[:, None, None, None]).sum(0) / w.sum()
    elif method == "median_fft":
        out = np.median(spec, axis=0)
    else:
        out = pick(spec, np.argmin if method == "min_fft" else np.argmax)
    return librosa.istft(out, hop_length=1024, n_fft=2048, length=length)


@pytest.mark.parametrize("method", METHODS)
def test_methods_match_msst_definitions(method: str) -> None:
    rng = np.random.default_rng(1)
    estimates = [rng.standard_normal((2, 20_000)).astype(np.float32) * s for s in (1.0, 0.5, 2.0)]
    weights = [2.0, 1.0, 0.5]
    got = combine([torch.from_numpy(e) for e in estimates], method, weights).numpy()
    want = _msst_reference(estimates, weights, method)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=2e-4 if method.endswith("fft") else 1e-6)
    assert np.abs(got - estimates[0]).max() > 1e-3  # not a pass-through of one member


@pytest.mark.parametrize("method", METHODS)
def test_identity_when_all_members_are_equal(method: str) -> None:
    torch.manual_seed(0)
    mix = 0.3 * torch.randn(2, 44100 + 4321)
    member = _tiny("htdemucs")
    alone = separate_tensor(member, mix)
    ensemble = Ensemble.from_models([member, member, member], ["a", "b", "c"], method=method, segment=10.0)
    out = separate_tensor(ensemble, mix)
    # float rounding only: the engine's overlap-add weighting of the ensemble's one chunk, and the STFT round trip
    tol = 1e-5 if method.endswith("fft") else 1e-7
    assert torch.allclose(out, alone, atol=tol, rtol=0), (out - alone).abs().max()


def test_stems_are_aligned_by_name_and_weighted_per_stem() -> None:
    """A 4-stem model and a model with the sources in another order: each output stem combines the members' stems of
    that name, with its own weights."""
    a, b = _tiny("htdemucs", 0), _tiny("classic")
    assert a.sources != b.sources and set(a.sources) <= set(b.sources) | {"other"}
    mix = 0.3 * torch.randn(2, 2 * 44100)
    sa, sb = separate_tensor(a, mix), separate_tensor(b, mix)
    ens = Ensemble.from_models([a, b], ["ht", "classic"], weights="vocals=3,1;drums=0,1", segment=10.0)
    out = separate_tensor(ens, mix)
    assert ens.sources == a.sources
    for k, stem in enumerate(a.sources):
        wa, wb = {"vocals": (3, 1), "drums": (0, 1)}.get(stem, (1, 1))
        if stem in b.sources:
            want = (wa * sa[k] + wb * sb[b.sources.index(stem)]) / (wa + wb)
        else:  # only the first member has it
            want = sa[k]
        assert torch.allclose(out[k], want, atol=1e-6), stem


def test_contract_shapes_attributes_and_no_writes() -> None:
    ens = Ensemble.from_models([_tiny("htdemucs"), _tiny("classic")], ["ht", "classic"], method="min_fft", segment=5.0)
    x = 0.1 * torch.randn(2, 2, 44100)
    before_x, before = x.clone(), snapshot(ens)
    with torch.no_grad():
        y = ens(x)
    assert y.shape == (2, len(ens.sources), 2, 44100) and y.dtype == x.dtype
    assert torch.equal(x, before_x) and not changed_attributes(before, snapshot(ens))
    assert (ens.samplerate, ens.audio_channels, ens.segment) == (44100, 2, 5.0)
    assert set(ens.state_dict()) == {f"members.0.{k}" for k in ens.members[0].state_dict()} | {
        f"members.1.{k}" for k in ens.members[1].state_dict()}


class _Longest(nn.Module):
    """Wraps a model and records the longest input it was given (the memory a run needs grows with it)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.sources, self.samplerate, self.audio_channels = inner.sources, inner.samplerate, inner.audio_channels
        self.segment = inner.segment
        self.seen: list[int] = []

    def forward(self, mix: torch.Tensor) -> torch.Tensor:
        self.seen.append(mix.shape[-1])  # test instrumentation, not part of any model
        return self.inner(mix)


def test_streams_in_bounded_memory_and_equals_the_offline_run() -> None:
    """Through the Separator's streaming path: stems come out before the input ends, every member only ever sees
    chunks of its own segment (never the whole song), and the streamed stems equal the offline ones."""
    members = [_Longest(_tiny("htdemucs", 0)), _Longest(_tiny("htdemucs", 1))]
    ens = Ensemble.from_models(members, ["a", "b"], segment=1.5)
    sep = stemwright.Separator(ens, device="cpu")
    rng = np.random.default_rng(3)
    song = (0.2 * rng.standard_normal((2, 6 * 44100))).astype(np.float32)
    offline = sep.separate(song, 44100)
    fed = []

    def blocks():
        for i in range(0, song.shape[1], 44100):
            fed.append(i)
            yield song[:, i : i + 44100]

    first_out_at, parts = None, []
    for part in sep.separate_stream(blocks(), 44100):
        first_out_at = first_out_at if first_out_at is not None else len(fed)
        parts.append(part)
    assert first_out_at < 6 // 2  # output before half of the song was read
    streamed = {s: np.concatenate([p[s] for p in parts], axis=1) for s in offline}
    for s in offline:
        np.testing.assert_allclose(streamed[s], offline[s], atol=1e-5)
    longest = max(max(m.seen) for m in members)
    assert longest <= members[0].inner.valid_length(44100) + 1, longest  # member chunks (1 s), never the song


def test_load_model_builds_an_ensemble_from_plus_names() -> None:
    assert is_ensemble_name("classic+classic") and not is_ensemble_name("classic") and not is_ensemble_name("a+")
    ens = load_model("classic+classic", ensemble_method="median_wave", ensemble_weights="1,2")
    assert isinstance(ens, Ensemble) and ens.config.members == ("classic", "classic")
    assert ens.config.method == "median_wave" and ens.config.weights == (("*", (1.0, 2.0)),)
    sep = stemwright.Separator("classic+classic", device="cpu")
    alone = stemwright.Separator("classic", device="cpu")
    song = (0.2 * np.random.default_rng(0).standard_normal((2, 3 * 44100))).astype(np.float32)
    a, b = sep.separate(song, 44100), alone.separate(song, 44100)
    assert list(a) == list(b)
    for s in a:
        np.testing.assert_allclose(a[s], b[s], atol=1e-6)


@pytest.mark.parametrize("make, match", [
    (lambda: Ensemble.from_models([_tiny("classic"), _tiny("classic")], ["a", "b"], method="mean"), "unknown ensemble method"),
    (lambda: Ensemble.from_models([_tiny("classic"), _tiny("classic")], ["a", "b"], weights="1,2,3"), "3 values for 2"),
    (lambda: Ensemble.from_models([_tiny("classic"), _tiny("classic")], ["a", "b"], weights="vocals=0,0"), "not all 0"),
    (lambda: Ensemble.from_models([_tiny("classic"), _tiny("classic")], ["a", "b"], weights="kazoo=1,1"), "kazoo"),
    (lambda: Ensemble.from_models([_tiny("classic"), _tiny("bsrnn")], ["a", "b"]), "8000 Hz"),
    (lambda: Ensemble.from_models([_tiny("classic")], ["a"]), "at least two"),
    (lambda: load_model("classic", ensemble_method="avg_fft"), "one model"),
])
def test_bad_ensembles_are_refused_clearly(make, match) -> None:
    with pytest.raises(ValueError, match=match):
        make()


def test_parse_weights() -> None:
    assert parse_weights("vocals=2,1; drums=1,3", 2) == (("vocals", (2.0, 1.0)), ("drums", (1.0, 3.0)))
    assert parse_weights("2,1", 2) == (("*", (2.0, 1.0)),)
    with pytest.raises(EnsembleError, match="numbers"):
        parse_weights("vocals=a,b", 2)


def test_separate_command_with_an_ensemble(tmp_path, capsys) -> None:
    """``stemwright separate -m classic+classic --ensemble-method median_fft --ensemble-weights 2,1`` writes the
    stems (equal to classic's, the members being equal); the ensemble options on one model are a usage error."""
    import soundfile as sf

    from stemwright.cli.main import main

    song = tmp_path / "song.wav"
    sf.write(str(song), (0.2 * np.random.default_rng(0).standard_normal((44100, 2))).astype(np.float32), 44100,
             subtype="FLOAT")
    args = [str(song), "-q", "--bit-depth", "32"]
    assert main(["separate", *args, "-o", str(tmp_path / "one"), "-m", "classic"]) == 0
    assert main(["separate", *args, "-o", str(tmp_path / "ens"), "-m", "classic+classic",
                 "--ensemble-method", "median_fft", "--ensemble-weights", "2,1"]) == 0
    manifest = stemwright.Manifest.read(tmp_path / "ens" / "song" / "stemwright.json")
    assert manifest.model == "classic+classic"
    for stem in ("vocals", "drums", "bass", "other"):
        a, _ = sf.read(str(tmp_path / "one" / "song" / f"{stem}.wav"))
        b, _ = sf.read(str(tmp_path / "ens" / "song" / f"{stem}.wav"))
        np.testing.assert_allclose(a, b, atol=1e-5)
    capsys.readouterr()
    assert main(["separate", *args, "-o", str(tmp_path / "bad"), "-m", "classic", "--ensemble-method", "avg_fft"]) == 2
    assert "one model" in capsys.readouterr().err
    assert main(["separate", *args, "-o", str(tmp_path / "bad"), "-m", "classic+classic",
                 "--ensemble-method", "mean"]) == 2
    assert "unknown ensemble method" in capsys.readouterr().err
