"""The streaming file path equals the in-memory path (float output, 1e-6) with shifts, residual, two stems, mono
and resampled input; identity through the stream for any length and block size; truncated files leave nothing."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from torch import nn

import stemwright.audio.stream as audio_stream
from stemwright.api import Separator, select_outputs
from stemwright.audio.io import AudioError, prepare_peaks_many, read_audio


class Identity(nn.Module):
    """'same' = the input, 'twice' = twice the input, at 44.1 kHz, with Demucs-style valid lengths."""

    sources = ("same", "twice")
    samplerate = 44100
    audio_channels = 2
    segment = 0.5

    def valid_length(self, n: int) -> int:
        return -(-n // 64) * 64 + 32

    def forward(self, mix: torch.Tensor) -> torch.Tensor:
        return torch.stack([mix, 2 * mix], dim=1)


def _noise(seconds: float, sr: int, channels: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.2 * rng.standard_normal((channels, int(seconds * sr)))).astype(np.float32)


def _in_memory(sep: Separator, path: Path, names: list[str], two_stems: str | None, clip_mode: str) -> dict:
    audio = read_audio(path)
    out = select_outputs(sep.separate(audio.samples, audio.samplerate), names, two_stems, audio.samples)
    arrays, _ = prepare_peaks_many(list(out.values()), clip_mode)
    return dict(zip(out, arrays))


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audio_stream, "BLOCK_FRAMES", 5000)  # many blocks for a few seconds of audio


@pytest.mark.parametrize("case", [
    dict(sr=44100, channels=2),
    dict(sr=48000, channels=2, shifts=1),
    dict(sr=44100, channels=1, residual="vocals"),
    dict(sr=22050, channels=1, two_stems="vocals"),
    dict(sr=44100, channels=2, clip_mode="rescale", gain=8.0),
    dict(sr=44100, channels=2, clip_mode="clamp", gain=8.0),
])
def test_file_stream_equals_in_memory(tmp_path: Path, small_blocks: None, case: dict, one_thread: None) -> None:
    x = _noise(2.3, case["sr"], case["channels"]) * case.get("gain", 1.0)
    src = tmp_path / "in.wav"
    sf.write(src, x.T, case["sr"], subtype="FLOAT")
    sep = Separator("classic", device="cpu", segment=1.0, shifts=case.get("shifts", 0),
                    residual=case.get("residual"))
    two = case.get("two_stems")
    clip = case.get("clip_mode", "none")
    r = sep.separate_file(src, tmp_path / "o", bit_depth=32, clip_mode=clip, two_stems=two)
    ref = _in_memory(sep, src, sep.select_stems(None, two), two, clip)
    assert set(r.stem_paths) == set(ref)
    for name, p in r.stem_paths.items():
        got, sr = sf.read(p, dtype="float32", always_2d=True)
        assert sr == case["sr"] and got.T.shape == ref[name].shape, name
        assert float(np.abs(got.T - ref[name]).max()) <= 1e-6, name
    assert r.manifest.duration == pytest.approx(x.shape[1] / case["sr"])
    assert r.manifest.clip["clip_mode"] == clip
    assert not list((tmp_path / "o").rglob(".*")), "temporary files left"


@pytest.mark.parametrize("length", [1, 7, 100, 2205, 22050, 44101])
@pytest.mark.parametrize("block", [1, 333, 4096, 100000])
def test_identity_through_the_stream(length: int, block: int) -> None:
    sep = Separator(Identity(), device="cpu", overlap=0.3)
    x = _noise(1.0, 44100, 2, seed=length)[:, :length]
    parts = list(sep.separate_stream((x[:, i : i + block] for i in range(0, length, block)), 44100))
    same = np.concatenate([p["same"] for p in parts], axis=1)
    twice = np.concatenate([p["twice"] for p in parts], axis=1)
    assert same.shape == x.shape
    assert float(np.abs(same - x).max()) <= 1e-6 and float(np.abs(twice - 2 * x).max()) <= 2e-6


def test_truncated_file_found_at_the_end_leaves_nothing(tmp_path: Path, small_blocks: None) -> None:
    src = tmp_path / "cut.wav"
    sf.write(src, _noise(2.0, 44100, 2).T, 44100, subtype="PCM_16")
    data = src.read_bytes()
    src.write_bytes(data[: len(data) * 2 // 3])  # header still declares the full length
    with pytest.raises(AudioError) as streamed:
        Separator(Identity(), device="cpu").separate_file(src, tmp_path / "o")
    with pytest.raises(AudioError) as in_memory:
        read_audio(src)
    assert str(streamed.value) == str(in_memory.value) and "truncated" in str(streamed.value)
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").rglob("*"))


def test_mp3_and_flac_outputs_in_two_passes(tmp_path: Path) -> None:
    src = tmp_path / "a.wav"
    sf.write(src, (4 * _noise(1.0, 44100, 2)).T, 44100, subtype="FLOAT")
    sep = Separator(Identity(), device="cpu")
    for fmt in ("mp3", "flac"):
        r = sep.separate_file(src, tmp_path / fmt, fmt=fmt, clip_mode="rescale")
        assert r.manifest.clip["action"].startswith("scaled by")
        a = read_audio(r.stem_paths["twice"])
        assert a.samplerate == 44100 and abs(a.duration - 1.0) < 0.1
        assert float(np.abs(a.samples).max()) <= 1.0
        assert r.manifest.peaks["twice"] == pytest.approx(0.0, abs=0.01)  # the loudest stem lands at full scale
        assert not list((tmp_path / fmt).rglob(".*"))


def test_separate_stream_refuses_changing_channels() -> None:
    sep = Separator(Identity(), device="cpu")
    from stemwright.api import SeparationError

    with pytest.raises(SeparationError, match="channels"):
        list(sep.separate_stream([np.zeros((2, 100)), np.zeros((1, 100))], 44100))
    with pytest.raises(SeparationError, match="no samples"):
        list(sep.separate_stream([], 44100))


def test_leftovers_of_a_killed_run_are_removed(tmp_path: Path) -> None:
    """SIGKILL runs no handler: the next run of the track removes its temporaries and spools."""
    src = tmp_path / "a.wav"
    sf.write(src, _noise(0.5, 44100, 2).T, 44100)
    folder = tmp_path / "o" / "a"
    folder.mkdir(parents=True)
    stale = [folder / ".same.wav.k3j2.part.wav", folder / ".twice.wav.x1.spool.f32"]
    other = folder / ".unrelated"
    for p in [*stale, other]:
        p.write_bytes(b"x")
    Separator(Identity(), device="cpu").separate_file(src, tmp_path / "o", skip_existing=True)
    assert not any(p.exists() for p in stale) and other.exists()


def test_reader_decodes_like_read_audio(tmp_path: Path) -> None:
    """Same decoder, same samples, same length as read_audio: libsndfile for wav/flac/mp3, PyAV for m4a."""
    import av

    from stemwright.audio.io import write_audio

    x = _noise(1.5, 44100, 2)
    paths = [write_audio(tmp_path / f"t.{ext}", x, 44100) for ext in ("flac", "mp3")]
    with av.open(str(tmp_path / "t.m4a"), "w") as out:
        s = out.add_stream("aac", rate=44100)
        s.layout = "stereo"
        frame = av.AudioFrame.from_ndarray(x, format="fltp", layout="stereo")
        frame.sample_rate = 44100
        for packet in [*s.encode(frame), *s.encode(None)]:
            out.mux(packet)
    for p in [*paths, tmp_path / "t.m4a"]:
        ref = read_audio(p)
        with audio_stream.open_audio_stream(p) as st:
            got = np.concatenate(list(st.blocks(3000)), axis=1)
            assert st.codec == ref.codec and st.samplerate == ref.samplerate, p
        assert got.shape == ref.samples.shape and np.array_equal(got, ref.samples), p
