"""stemwright.Separator: arrays and files, rates, channels, residual, selection, manifest, clip modes, progress."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from torch import nn

import stemwright
from stemwright.api import SeparationError, Separator, track_name
from stemwright.audio.io import AudioError, read_audio
from stemwright.engine.progress import ProgressEvent
from stemwright.manifest import MANIFEST_VERSION, Manifest

SR = 44100


class Split(nn.Module):
    """Toy model at 44.1 kHz: 'low' = 0.7 x mix, 'high' = gain x mix (a gain > 0.3 pushes the sum over the mix)."""

    sources = ("low", "high")
    samplerate = SR
    audio_channels = 2
    segment = 1.0

    def __init__(self, gain: float = 0.3) -> None:
        super().__init__()
        self.gain = gain

    def forward(self, mix: torch.Tensor) -> torch.Tensor:
        return torch.stack([0.7 * mix, self.gain * mix], dim=1)


def music(seconds: float = 2.0, sr: int = SR, channels: int = 2, seed: int = 0, noise: float = 0.05) -> np.ndarray:
    """Band-limited noise plus a tone. Shape: ``(channels, T)``."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    base = 0.3 * np.sin(2 * np.pi * 220 * t)
    return np.stack([base + noise * rng.standard_normal(t.size) for _ in range(channels)]).astype(np.float32)


@pytest.fixture(scope="module")
def classic() -> Separator:
    return Separator("classic", device="cpu", segment=3.0)


def test_lazy_import() -> None:
    assert stemwright.Separator is Separator


def test_separate_numpy_and_torch(classic: Separator) -> None:
    x = music()
    before = x.copy()
    stems = classic.separate(x, SR)
    assert list(stems) == ["vocals", "drums", "bass", "other"]
    assert all(v.shape == x.shape and v.dtype == np.float32 for v in stems.values())
    assert np.array_equal(x, before)
    assert np.abs(sum(stems.values()) - x).max() < 1e-5
    xt = torch.from_numpy(x.copy())
    stems_t = classic.separate(xt, SR)
    assert torch.equal(xt, torch.from_numpy(before))
    assert all(np.allclose(stems[k], stems_t[k], atol=1e-6) for k in stems)


@pytest.mark.parametrize("sr", [8000, 22050, 48000, 96000])
def test_other_rates_come_back_at_the_input_rate(sr: int) -> None:
    sep = Separator(Split(), device="cpu")
    x = music(0.5, sr=sr, noise=0.0)  # a tone: resampling round trips are exact well below Nyquist
    stems = sep.separate(x, sr)
    assert all(v.shape == x.shape for v in stems.values())
    mid = slice(500, x.shape[1] - 500)
    assert np.allclose(stems["low"][:, mid], 0.7 * x[:, mid], atol=2e-3)


def test_mono_in_mono_out_and_1d(classic: Separator) -> None:
    x = music(channels=1)
    stems = classic.separate(x, SR)
    assert all(v.shape == (1, x.shape[1]) for v in stems.values())
    assert np.abs(sum(stems.values()) - x).max() < 1e-5
    stems_1d = classic.separate(x[0], SR)
    assert all(v.shape == (1, x.shape[1]) for v in stems_1d.values())


def test_surround_is_downmixed_with_itu_coefficients() -> None:
    """Issue 17 defect 7: 5.1 and 7.1 keep their stereo image (ITU-R BS.775, LFE dropped), not mono in both."""
    k = 0.70710678
    x = music(0.5, channels=6, seed=1)  # L R C LFE Ls Rs
    with pytest.warns(UserWarning, match="5.1 downmixed to stereo .ITU-R BS.775, LFE dropped"):
        stems = Separator(Split(), device="cpu").separate(x, SR)
    assert stems["low"].shape == (2, x.shape[1])
    assert np.allclose(stems["low"][0], 0.7 * (x[0] + k * x[2] + k * x[4]), atol=1e-5)
    assert np.allclose(stems["low"][1], 0.7 * (x[1] + k * x[2] + k * x[5]), atol=1e-5)
    y = music(0.5, channels=8, seed=2)  # L R C LFE Lb Rb Ls Rs
    with pytest.warns(UserWarning, match="7.1 downmixed"):
        stems = Separator(Split(), device="cpu").separate(y, SR)
    assert np.allclose(stems["low"][1], 0.7 * (y[1] + k * y[2] + k * y[5] + k * y[7]), atol=1e-5)
    z = music(0.5, channels=3)
    with pytest.warns(UserWarning, match="3-channel input downmixed to stereo .no standard layout"):
        stems = Separator(Split(), device="cpu").separate(z, SR)
    assert np.allclose(stems["low"][0], 0.7 * z.mean(0), atol=1e-5)


@pytest.mark.parametrize("dtype, scale, offset", [(np.int16, 32768, 0), (np.int32, 2**31, 0), (np.uint8, 128, 128)])
def test_integer_arrays_are_scaled_like_integer_files(dtype: type, scale: float, offset: float) -> None:
    """Issue 17 defect 4: int16 stems came back at +-32768 scale and uint8 kept its DC."""
    x = music(0.3)
    ints = np.round(x * (scale - 1) + offset).astype(dtype)
    stems = Separator(Split(), device="cpu").separate(ints, SR)
    expected = (ints.astype(np.float64) - offset) / scale
    assert np.allclose(stems["low"], 0.7 * expected, atol=1e-5)
    t = Separator(Split(), device="cpu").separate(torch.from_numpy(ints.astype(np.int16) if dtype is np.uint8 else ints), SR)
    assert np.abs(t["low"]).max() < 1.0
    with pytest.raises(SeparationError, match="boolean"):
        Separator(Split(), device="cpu").separate(x > 0, SR)


@pytest.mark.parametrize("sr", ["44100", 44100.0, 44100.9, True, None])
def test_samplerate_must_be_an_integer(sr: object) -> None:
    """Issue 17 defect 5: "44100" raised a TypeError from deep inside; 44100.9 was truncated silently."""
    with pytest.raises(SeparationError, match="samplerate must be an integer"):
        Separator(Split(), device="cpu").separate(music(0.1), sr)  # type: ignore[arg-type]
    assert Separator(Split(), device="cpu").separate(music(0.1), np.int64(SR))["low"].shape == (2, SR // 10)


def test_residual_makes_stems_sum_to_mixture() -> None:
    x = music(0.5, sr=22050)
    plain = Separator(Split(gain=0.5), device="cpu").separate(x, 22050)
    assert np.abs(sum(plain.values()) - x).max() > 0.1  # the toy model over-estimates
    res = Separator(Split(gain=0.5), device="cpu", residual="high").separate(x, 22050)
    assert np.abs(sum(res.values()) - x).max() < 1e-6
    assert np.allclose(res["low"], plain["low"])


def test_progress_callback_and_cancel(classic: Separator) -> None:
    events: list[ProgressEvent] = []
    classic.separate(music(4.0), SR, progress=events.append)
    fractions = [e.fraction for e in events]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0
    assert {"resample", "separate", "done"} <= {e.stage for e in events}
    chunks = [e for e in events if e.stage == "separate"]
    assert chunks[-1].chunk_index == chunks[-1].num_chunks >= 2

    def cancel(ev: ProgressEvent) -> None:
        if ev.stage == "separate":
            raise RuntimeError("cancelled by user")

    with pytest.raises(RuntimeError, match="cancelled"):
        classic.separate(music(4.0), SR, progress=cancel)


@pytest.mark.parametrize(
    "audio, sr, match",
    [
        (np.zeros((2, 0), np.float32), SR, "no samples"),
        (np.full((2, 10), np.nan, np.float32), SR, "non-finite"),
        (np.zeros((2, 100), np.float32), 4000, "samplerate"),
        (np.zeros((1000, 2), np.float32), SR, "looks like"),
        (np.zeros((2, 2, 10), np.float32), SR, "channels, time"),
    ],
)
def test_bad_arrays(audio: np.ndarray, sr: int, match: str) -> None:
    with pytest.raises(SeparationError, match=match):
        Separator(Split(), device="cpu").separate(audio, sr)


def test_bad_options() -> None:
    with pytest.raises(SeparationError, match="residual"):
        Separator(Split(), residual="vocals")
    with pytest.raises(SeparationError, match="overlap"):
        Separator(Split(), overlap=1.5)
    with pytest.raises(ValueError, match="unknown model"):
        Separator("no-such-model", offline=True)
    with pytest.raises(TypeError, match="not a separation model"):
        Separator(nn.Linear(2, 2))


def test_one_sample_and_silence(classic: Separator) -> None:
    one = classic.separate(np.array([[0.5], [0.25]], np.float32), SR)
    assert all(v.shape == (2, 1) for v in one.values())
    for sr in (8000, 192000):  # one sample at 192 kHz is less than one at 44.1 kHz
        tiny = Separator(Split(), device="cpu", residual="high").separate(np.array([[0.5], [0.25]], np.float32), sr)
        assert all(v.shape == (2, 1) and np.isfinite(v).all() for v in tiny.values())
        assert np.allclose(tiny["low"] + tiny["high"], [[0.5], [0.25]], atol=1e-6)
    silent = classic.separate(np.zeros((2, 5000), np.float32), SR)
    assert all(not v.any() for v in silent.values())


# -- files --------------------------------------------------------------------------------------------------
def _wav(path: Path, x: np.ndarray, sr: int = SR, subtype: str = "FLOAT") -> Path:
    sf.write(str(path), x.T, sr, subtype=subtype)
    return path


def test_separate_file_writes_stems_and_manifest(tmp_path: Path, classic: Separator) -> None:
    x = music(2.0, sr=48000)
    src = _wav(tmp_path / "My Song.wav", x, 48000)
    before = src.read_bytes()
    events: list[ProgressEvent] = []
    r = classic.separate_file(src, tmp_path / "out", progress=events.append)
    folder = tmp_path / "out" / "My Song"
    assert r.manifest_path == folder / "stemwright.json"
    assert set(p.name for p in folder.iterdir()) == {"vocals.wav", "drums.wav", "bass.wav", "other.wav", "stemwright.json"}
    m = json.loads(r.manifest_path.read_text())
    assert m == r.manifest.to_dict() and Manifest.read(r.manifest_path) == r.manifest
    assert m["version"] == MANIFEST_VERSION
    for key in ("stemwright_version", "model", "parameters", "input", "samplerate", "stems", "clip", "seconds", "rtf", "peaks"):
        assert key in m, key
    assert m["model"] == "classic" and m["samplerate"] == 48000 and m["input"]["samplerate"] == 48000
    assert m["input"]["channels"] == 2 and m["input"]["duration"] == pytest.approx(2.0)
    assert m["stems"] == {s: f"{s}.wav" for s in ("vocals", "drums", "bass", "other")}
    assert m["clip"]["clip_mode"] == "rescale" and m["parameters"]["clip_mode"] == "rescale"
    assert m["rtf"] > 0 and set(m["peaks"]) == set(m["stems"])
    for s in m["stems"]:
        a = read_audio(folder / m["stems"][s])
        assert a.samplerate == 48000 and a.samples.shape == x.shape and sf.info(str(folder / f"{s}.wav")).subtype == "PCM_24"
    assert src.read_bytes() == before
    assert [e.stage for e in events][0] == "load" and events[-1].fraction == 1.0
    assert "write" in {e.stage for e in events}


def test_refuses_to_overwrite(tmp_path: Path) -> None:
    sep = Separator(Split(), device="cpu")
    src = _wav(tmp_path / "a.wav", music(0.3))
    r = sep.separate_file(src, tmp_path / "out")
    stamp = r.stem_paths["low"].read_bytes()
    with pytest.raises(AudioError, match="already exists"):
        Separator(Split(gain=0.1), device="cpu").separate_file(src, tmp_path / "out")
    assert r.stem_paths["low"].read_bytes() == stamp
    r2 = Separator(Split(gain=0.1), device="cpu").separate_file(src, tmp_path / "out", overwrite=True)
    assert read_audio(r2.stem_paths["high"]).samples.max() < 0.5 * read_audio(r.stem_paths["low"]).samples.max()
    assert not [p for p in (tmp_path / "out" / "a").iterdir() if p.name.startswith(".")]  # no temp files left


def test_two_stems_and_stem_selection(tmp_path: Path) -> None:
    sep = Separator(Split(gain=0.5), device="cpu")
    x = music(0.3)
    src = _wav(tmp_path / "a.wav", x)
    r = sep.separate_file(src, tmp_path / "two", two_stems="high", bit_depth=32, clip_mode="none")
    assert set(r.stem_paths) == {"high", "no_high"}
    got = {k: read_audio(p).samples for k, p in r.stem_paths.items()}
    assert np.abs(got["high"] + got["no_high"] - x).max() < 1e-6
    r = sep.separate_file(src, tmp_path / "sel", stems=["low"])
    assert set(r.stem_paths) == {"low"} and list(r.manifest.stems) == ["low"]
    with pytest.raises(SeparationError, match="not among"):
        sep.separate_file(src, tmp_path / "x", stems=["vocals"])
    with pytest.raises(SeparationError, match="two_stems"):
        sep.separate_file(src, tmp_path / "x", two_stems="vocals")
    with pytest.raises(SeparationError, match="not both"):
        sep.separate_file(src, tmp_path / "x", stems=["low"], two_stems="low")


@pytest.mark.parametrize("mode", ["rescale", "clamp", "none"])
def test_clip_modes(tmp_path: Path, mode: str) -> None:
    """The toy model's 'low' stem peaks at 0.7 x 1.6 = 1.12 > full scale."""
    t = np.arange(SR // 4) / SR
    x = np.stack([1.6 * np.sin(2 * np.pi * 100 * t)] * 2).astype(np.float32)
    src = _wav(tmp_path / "loud.wav", x)
    r = Separator(Split(), device="cpu").separate_file(src, tmp_path / mode, bit_depth=32, clip_mode=mode)
    low = read_audio(r.stem_paths["low"]).samples
    high = read_audio(r.stem_paths["high"]).samples
    clip = json.loads(r.manifest_path.read_text())["clip"]
    assert clip["clip_mode"] == mode and clip["peak"] == pytest.approx(1.12, abs=1e-3)
    if mode == "rescale":
        assert np.abs(low).max() == pytest.approx(1.0, abs=1e-6)
        assert np.allclose(high * 0.7, low * 0.3, atol=1e-6)  # one shared gain keeps the stems' balance
    elif mode == "clamp":
        assert np.abs(low).max() == pytest.approx(1.0) and np.abs(high).max() == pytest.approx(0.48, abs=1e-3)
    else:
        assert np.abs(low).max() == pytest.approx(1.12, abs=1e-3)


def test_filename_template(tmp_path: Path) -> None:
    sep = Separator(Split(), device="cpu")
    src = _wav(tmp_path / "b.wav", music(0.2))
    r = sep.separate_file(src, tmp_path / "o", filename="{model}/{track}-{stem}.{ext}", fmt="flac", bit_depth=16)
    assert r.stem_paths["low"] == tmp_path / "o" / "Split" / "b-low.flac"
    assert r.manifest_path == tmp_path / "o" / "Split" / "stemwright.json"
    assert r.manifest.stems["low"] == "b-low.flac"
    with pytest.raises(SeparationError, match="unknown field"):
        sep.separate_file(src, tmp_path / "o", filename="{track}/{instrument}.{ext}")
    with pytest.raises(SeparationError, match="must contain"):
        sep.separate_file(src, tmp_path / "o", filename="{track}.{ext}")
    with pytest.raises(SeparationError, match="outside"):
        sep.separate_file(src, tmp_path / "o", filename="../{track}/{stem}.{ext}")


def test_mp3_output_and_mono_file(tmp_path: Path) -> None:
    sep = Separator(Split(), device="cpu")
    src = _wav(tmp_path / "m.wav", music(0.5, channels=1))
    r = sep.separate_file(src, tmp_path / "o", fmt="mp3", mp3_bitrate=192)
    a = read_audio(r.stem_paths["low"])
    assert a.channels == 1 and a.samplerate == SR
    assert r.manifest.parameters.mp3_bitrate == 192 and r.manifest.channels == 1


def test_bad_files(tmp_path: Path) -> None:
    sep = Separator(Split(), device="cpu")
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(AudioError, match="empty"):
        sep.separate_file(tmp_path / "empty.wav", tmp_path / "o")
    x = music(0.2)
    x[0, 5] = np.nan
    with pytest.raises(AudioError, match="non-finite"):
        sep.separate_file(_wav(tmp_path / "nan.wav", x), tmp_path / "o")
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    with pytest.raises(AudioError, match="cannot create output folder"):
        sep.separate_file(_wav(tmp_path / "ok.wav", music(0.2)), blocker / "out")
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").rglob("*.wav"))


def test_six_channel_file_and_one_sample_file(tmp_path: Path) -> None:
    sep = Separator(Split(), device="cpu")
    with pytest.warns(UserWarning, match="downmixed"):
        r = sep.separate_file(_wav(tmp_path / "six.wav", music(0.3, channels=6)), tmp_path / "o")
    assert read_audio(r.stem_paths["low"]).channels == 2 and r.manifest.input.channels == 6
    r = sep.separate_file(_wav(tmp_path / "one.wav", np.array([[0.5], [0.5]], np.float32)), tmp_path / "o")
    assert read_audio(r.stem_paths["low"]).samples.shape == (2, 1)


def test_track_name() -> None:
    assert track_name("/x/Song.stem.mp4") == "Song"
    assert track_name("a.b.flac") == "a.b"


def test_overlap_defaults_to_the_models_own() -> None:
    """A model that carries its publisher's overlap (RoFormer YAML ``num_overlap``) is run with it unless the
    caller asks for another; models without one get 25 %."""
    model = Split()
    assert Separator(model=model, device="cpu").overlap == 0.25
    model.default_overlap = 0.75
    assert Separator(model=model, device="cpu").overlap == 0.75
    assert Separator(model=model, device="cpu", overlap=0.1).overlap == 0.1
    assert Separator(model=model, device="cpu", overlap=0.0).overlap == 0.0
    assert Separator(model=model, device="cpu").parameters()["overlap"] == 0.75


# -- issue 17: failures leave nothing behind, re-runs, layout fields -------------------------------------------
def test_failed_inputs_leave_no_folders(tmp_path: Path) -> None:
    """Defect 6: a failed input left an empty OUT/<track>/ folder (CLI and API alike)."""
    sep = Separator(Split(), device="cpu")
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(AudioError, match="empty"):
        sep.separate_file(tmp_path / "empty.wav", tmp_path / "o")
    with pytest.raises(AudioError, match="not found"):
        sep.separate_file(tmp_path / "missing.wav", tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_disk_full_says_so_and_leaves_no_partial_track(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Defect 8: "could not write (LibsndfileError: System error.)" and a vocals.wav without a manifest."""
    import shutil

    from stemwright.audio.stream import BlockWriter

    sep = Separator(Split(), device="cpu")
    src = _wav(tmp_path / "a.wav", music(0.3))
    real_write = BlockWriter.write
    names = []

    def full_after_one(self, block):  # libsndfile's report of ENOSPC carries no errno
        names.append(self)
        if len(set(map(id, names))) > 1:  # the second stem's writer
            raise RuntimeError("System error.")
        return real_write(self, block)

    monkeypatch.setattr(BlockWriter, "write", full_after_one)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**9, 10**9, 0))
    with pytest.raises(AudioError, match="high.wav: could not write: no space left on device"):
        sep.separate_file(src, tmp_path / "o")
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").rglob("*"))


def test_filename_layout_fields_and_refusals(tmp_path: Path) -> None:
    """Defects 3 and 9: {parent} keeps same-named files of different folders apart (MUSDB's track/mixture.wav);
    conversions and format specs are refused."""
    sep = Separator(Split(), device="cpu")
    (tmp_path / "Track A").mkdir()
    src = _wav(tmp_path / "Track A" / "mixture.wav", music(0.2))
    r = sep.separate_file(src, tmp_path / "o", filename="{model}/{parent}/{stem}.{ext}")
    assert r.stem_paths["low"] == tmp_path / "o" / "Split" / "Track A" / "low.wav"
    for bad in ("{track}/{stem!r}.{ext}", "{track}/{stem:>9}.{ext}", "{track}/{stem}.{ext"):
        with pytest.raises(SeparationError, match="filename template"):
            sep.options(filename=bad)


def test_segment_has_a_lower_bound() -> None:
    """Defect 9: --segment 0.01 was accepted (66 s for an 11 s song)."""
    with pytest.raises(SeparationError, match="at least 0.5 s"):
        Separator(Split(), device="cpu", segment=0.01)
    assert Separator(Split(), device="cpu", segment=0.5).segment == 0.5


def test_skip_existing_resume_and_overwrite_cleanup(tmp_path: Path) -> None:
    src = _wav(tmp_path / "a.wav", music(0.3))
    out = tmp_path / "o"
    first = Separator(Split(), device="cpu").separate_file(src, out)
    stamp = first.manifest_path.stat().st_mtime_ns
    again = Separator(Split(), device="cpu").separate_file(src, out, skip_existing=True)
    assert again.skipped and again.manifest == first.manifest and first.manifest_path.stat().st_mtime_ns == stamp
    # Other options: not the same run, and a finished run is kept unless overwrite is asked for.
    with pytest.raises(AudioError, match="holds another run's stems .separated with clip_mode 'rescale', not 'clamp'"):
        Separator(Split(), device="cpu").separate_file(src, out, skip_existing=True, clip_mode="clamp")
    # An interrupted run (stems, no manifest) is redone.
    first.manifest_path.unlink()
    redone = Separator(Split(), device="cpu").separate_file(src, out, skip_existing=True)
    assert not redone.skipped and redone.manifest_path.exists()
    # Overwrite with another stem set removes the previous run's other stems: a folder never mixes two runs.
    Separator(Split(), device="cpu").separate_file(src, out, two_stems="low", overwrite=True)
    assert sorted(p.name for p in (out / "a").iterdir()) == ["low.wav", "no_low.wav", "stemwright.json"]


def test_model_settings_are_checked_when_made_and_build_the_separator() -> None:
    """``ModelSettings`` (what ``separate``, ``batch`` and each batch worker build a Separator from) refuses bad
    chunking at once, with a typed error, and its separator carries every setting."""
    from stemwright.api import ModelSettings
    from stemwright.errors import SeparationError

    for bad in ({"overlap": 1.0}, {"shifts": -1}, {"segment": 0.0}, {"model": ""}):
        with pytest.raises(SeparationError):
            ModelSettings(**{"model": "classic", **bad})
    sep = ModelSettings(model="classic", device="cpu", segment=4.0, overlap=0.5, shifts=1,
                        residual="other").separator()
    assert (sep.model_name, str(sep.device), sep.segment, sep.overlap, sep.shifts, sep.residual) == \
        ("classic", "cpu", 4.0, 0.5, 1, "other")


def test_workers_default_and_same_stems(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from stemwright.engine import run

    monkeypatch.setattr(run, "default_workers", lambda device: 2)
    monkeypatch.setattr("stemwright.api.default_workers", run.default_workers)
    x = music(3.5)
    two = Separator(Split(), device="cpu")
    assert two.workers == 2
    serial = Separator(Split(), device="cpu", workers=1)
    a, b = two.separate(x, SR), serial.separate(x, SR)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    streamed = {k: np.concatenate([blk[k] for blk in two.separate_stream(np.array_split(x, 7, axis=1), SR)], axis=1)
                for k in a}
    assert all(np.allclose(streamed[k], a[k], atol=1e-6) for k in a)
    for bad in (0, 1.5, True):
        with pytest.raises(SeparationError, match="workers"):
            Separator(Split(), device="cpu", workers=bad)
