"""Reading every common format, any rate 8-192 kHz, writing wav/flac/mp3 atomically, and each bad input."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from stemwright.audio.io import AudioError, prepare_peaks, read_audio, write_audio
from stemwright.audio.resample import resample
from tests.audio.fixtures import SR, tone, write_av, write_sf


def _snr_db(ref: np.ndarray, est: np.ndarray) -> float:
    n = min(ref.shape[-1], est.shape[-1])
    ref, est = ref[..., :n], est[..., :n]
    return float(10 * np.log10((ref**2).sum() / max(((ref - est) ** 2).sum(), 1e-20)))


@pytest.mark.parametrize(
    "name, kw, min_snr",
    [
        ("a16.wav", dict(subtype="PCM_16"), 80),
        ("a24.wav", dict(subtype="PCM_24"), 120),
        ("a32.wav", dict(subtype="PCM_32"), 120),
        ("af.wav", dict(subtype="FLOAT"), 200),
        ("a.flac", dict(subtype="PCM_24"), 120),
        ("a.aiff", dict(subtype="PCM_16"), 80),
        ("a.ogg", dict(format="OGG", subtype="VORBIS"), 15),
        ("a.mp3", dict(format="MP3"), 15),
    ],
)
def test_reads_soundfile_formats(tmp_path: Path, name: str, kw: dict, min_snr: float) -> None:
    x = tone()
    audio = read_audio(write_sf(tmp_path / name, x, **kw))
    assert audio.samples.dtype == np.float32 and audio.samples.shape[0] == 2
    assert audio.samplerate == SR
    assert abs(audio.samples.shape[1] - x.shape[1]) <= 1152
    if kw.get("format") != "MP3":  # mp3 adds an encoder delay; level and length are enough there
        assert _snr_db(x, audio.samples) > min_snr
    assert np.abs(audio.samples).max() == pytest.approx(0.5, abs=0.1)


def test_reads_opus(tmp_path: Path) -> None:
    x = tone(sr=48000)
    audio = read_audio(write_sf(tmp_path / "a.opus", x, sr=48000, format="OGG", subtype="OPUS"))
    assert audio.samplerate == 48000 and audio.samples.shape[0] == 2
    assert abs(audio.samples.shape[1] - x.shape[1]) < 1000


def test_reads_m4a_aac(tmp_path: Path) -> None:
    x = tone(1.0)
    audio = read_audio(write_av(tmp_path / "a.m4a", [x]))
    assert audio.codec == "aac" and audio.samplerate == SR and audio.samples.shape[0] == 2
    mid = slice(5000, 40000)
    assert _snr_db(x[:, mid], audio.samples[:, mid]) > 15


def test_reads_the_mixture_stream_of_a_stem_mp4(tmp_path: Path) -> None:
    mixture, drums = tone(1.0), 0.1 * tone(1.0)[::-1].copy()
    audio = read_audio(write_av(tmp_path / "song.stem.mp4", [mixture, drums, drums, drums, drums]))
    mid = slice(5000, 40000)
    assert _snr_db(mixture[:, mid], audio.samples[:, mid]) > 15  # stream 0, not a stem


@pytest.mark.parametrize("sr", [8000, 11025, 16000, 22050, 44100, 48000, 88200, 96000, 176400, 192000])
def test_any_rate_from_8_to_192_khz(tmp_path: Path, sr: int) -> None:
    x = tone(0.1, sr=sr)
    audio = read_audio(write_sf(tmp_path / f"r{sr}.flac", x, sr=sr))
    assert audio.samplerate == sr and audio.samples.shape == x.shape


def test_rate_outside_range_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="outside the supported"):
        read_audio(write_sf(tmp_path / "low.wav", tone(0.1, sr=4000), sr=4000))


def test_mono_and_six_channels_are_read_as_is(tmp_path: Path) -> None:
    assert read_audio(write_sf(tmp_path / "m.wav", tone(channels=1))).channels == 1
    assert read_audio(write_sf(tmp_path / "six.wav", tone(channels=6))).channels == 6


# -- bad input ---------------------------------------------------------------------------------------------
def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="file not found") as e:
        read_audio(tmp_path / "nope.wav")
    assert "nope.wav" in str(e.value)


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(AudioError, match="empty"):
        read_audio(tmp_path / "empty.wav")


def test_text_file_named_wav(tmp_path: Path) -> None:
    (tmp_path / "notes.wav").write_text("these are my lyrics, not audio\n" * 20)
    with pytest.raises(AudioError, match="not an audio file or corrupt") as e:
        read_audio(tmp_path / "notes.wav")
    assert "\n" not in str(e.value) and "notes.wav" in str(e.value)


def test_folder_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="not a file"):
        read_audio(tmp_path)


@pytest.mark.parametrize("keep", [0.02, 0.5])
def test_truncated_mp3(tmp_path: Path, keep: float) -> None:
    full = write_sf(tmp_path / "full.mp3", tone(3.0), format="MP3")
    data = full.read_bytes()
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(AudioError, match="truncated or corrupt|not an audio file"):
        read_audio(cut)
    assert read_audio(full).samples.shape[1] > 0  # the intact file reads


def test_nan_samples_in_float_wav(tmp_path: Path) -> None:
    x = tone()
    x[1, 100] = np.nan
    x[0, 7] = np.inf
    with pytest.raises(AudioError, match="2 non-finite"):
        read_audio(write_sf(tmp_path / "nan.wav", x, subtype="FLOAT"))


def test_one_sample_and_silence_are_valid(tmp_path: Path) -> None:
    one = read_audio(write_sf(tmp_path / "one.wav", np.array([[0.25], [-0.25]], dtype=np.float32)))
    assert one.samples.shape == (2, 1)
    silent = read_audio(write_sf(tmp_path / "silent.wav", np.zeros((2, 1000), dtype=np.float32)))
    assert not silent.samples.any()


# -- writing -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt, depth, tol", [("wav", 16, 1e-4), ("wav", 24, 1e-6), ("wav", 32, 0.0), ("flac", 16, 1e-4), ("flac", 24, 1e-6)])
def test_write_pcm_round_trip(tmp_path: Path, fmt: str, depth: int, tol: float) -> None:
    x = tone()
    p = write_audio(tmp_path / f"out.{fmt}", x, SR, bit_depth=depth)
    info = sf.info(str(p))
    assert info.subtype == {16: "PCM_16", 24: "PCM_24", 32: "FLOAT"}[depth]
    assert float(np.abs(read_audio(p).samples - x).max()) <= tol
    assert [f.name for f in tmp_path.iterdir()] == [f"out.{fmt}"]  # no temporary files left


@pytest.mark.parametrize("kbps", [128, 320])
def test_write_mp3(tmp_path: Path, kbps: int) -> None:
    x = tone(2.0)
    p = write_audio(tmp_path / "out.mp3", x, SR, mp3_bitrate=kbps)
    audio = read_audio(p)
    assert audio.samplerate == SR and audio.channels == 2
    assert abs(audio.samples.shape[1] - x.shape[1]) < 3000
    assert np.abs(audio.samples).max() == pytest.approx(0.5, abs=0.05)
    mono = write_audio(tmp_path / "mono.mp3", x[:1], SR)
    assert read_audio(mono).channels == 1


def test_write_refuses_to_overwrite(tmp_path: Path) -> None:
    p = write_audio(tmp_path / "a.wav", tone(), SR)
    before = p.read_bytes()
    with pytest.raises(AudioError, match="already exists"):
        write_audio(p, tone() * 0.1, SR)
    assert p.read_bytes() == before
    write_audio(p, tone() * 0.1, SR, overwrite=True)
    assert p.read_bytes() != before


def test_write_to_unwritable_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(AudioError, match="cannot create output folder"):
        write_audio(blocker / "sub" / "a.wav", tone(), SR)


@pytest.mark.parametrize("kwargs, match", [(dict(fmt="ogg"), "unsupported output format"), (dict(bit_depth=20), "bit depth"),
                                           (dict(fmt="flac", bit_depth=32), "flac bit depth"), (dict(fmt="mp3", mp3_bitrate=999), "bitrate")])
def test_write_rejects_bad_options(tmp_path: Path, kwargs: dict, match: str) -> None:
    with pytest.raises(AudioError, match=match):
        write_audio(tmp_path / "a.wav", tone(), SR, **kwargs)
    assert not any(tmp_path.iterdir())


def test_prepare_peaks_modes() -> None:
    x = np.array([[0.5, -2.0, 1.0]], dtype=np.float32)
    y, rep = prepare_peaks(x, "rescale")
    assert np.abs(y).max() == pytest.approx(1.0) and rep["clip_mode"] == "rescale" and "scaled" in rep["action"]
    y, rep = prepare_peaks(x, "clamp")
    assert y.tolist() == [[0.5, -1.0, 1.0]]
    y, rep = prepare_peaks(x, "none")
    assert y is x and rep["peak"] == 2.0
    y, rep = prepare_peaks(x * 0.1, "rescale")
    assert rep["action"] == "none"
    with pytest.raises(ValueError, match="clip mode"):
        prepare_peaks(x, "soft")


@pytest.mark.parametrize("sr_in, sr_out", [(8000, 44100), (44100, 48000), (192000, 44100), (44100, 44100)])
def test_resample_lengths_and_input_untouched(sr_in: int, sr_out: int) -> None:
    x = tone(0.2, sr=sr_in)
    before = x.copy()
    y = resample(x, sr_in, sr_out)
    assert y.shape == (2, round(x.shape[1] * sr_out / sr_in))
    assert np.array_equal(x, before) and y is not x
    back = resample(y, sr_out, sr_in)
    mid = slice(200, x.shape[1] - 200)
    assert _snr_db(x[:, mid], back[:, mid]) > 60


@pytest.mark.parametrize("name, subtype", [("t.wav", "PCM_16"), ("t24.wav", "PCM_24"), ("t.flac", "PCM_16")])
def test_truncated_wav_and_flac_are_refused(tmp_path: Path, name: str, subtype: str) -> None:
    """Issue 17 defect 2: a cut wav was read as half a song; a cut flac "kept 58 frames" and went on."""
    full = tmp_path / ("full" + Path(name).suffix)
    sf.write(str(full), tone(2.0, channels=2).T, SR, subtype=subtype)
    data = full.read_bytes()
    cut = tmp_path / name
    cut.write_bytes(data[: len(data) // 2 + 1])
    with pytest.raises(AudioError, match="truncated or corrupt"):
        read_audio(cut)
    assert read_audio(full).samples.shape == (2, 2 * SR)


def test_wav_with_unknown_data_size_is_read(tmp_path: Path) -> None:
    """A streaming writer leaves the data size 0xFFFFFFFF: that is "unknown", not a truncation."""
    path = tmp_path / "stream.wav"
    sf.write(str(path), tone(0.5).T, SR, subtype="PCM_16")
    raw = bytearray(path.read_bytes())
    at = raw.index(b"data") + 4
    raw[at : at + 4] = b"\xff\xff\xff\xff"
    path.write_bytes(bytes(raw))
    assert read_audio(path).samples.shape[1] == SR // 2


def test_disk_full_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 17 defect 8: ENOSPC read "could not write (LibsndfileError: System error.)"."""
    import errno

    import stemwright.audio.io as io

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(io.sf, "write", full)
    with pytest.raises(AudioError, match="x.wav: could not write: no space left on device"):
        write_audio(tmp_path / "x.wav", tone(0.1), SR)
    assert list(tmp_path.iterdir()) == []


def test_native_decoder_chatter_is_hidden_on_request(tmp_path: Path, mixtures_dir: Path) -> None:
    """libmpg123 prints "Note: Illegal Audio-MPEG-Header ..." straight to file descriptor 2; the CLI hides it
    unless -v (issue 17)."""
    import subprocess
    import sys

    data = bytearray((mixtures_dir / "spleeter_audio_example_SlowMotionDream_StevenMBryant_CC-BY-3.0.mp3").read_bytes()[:200_000])
    data[50_000:53_000] = np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes()
    bad = tmp_path / "glitch.mp3"
    bad.write_bytes(bytes(data))
    script = ("import sys\nfrom stemwright.audio.io import AudioError, read_audio, set_native_decoder_messages\n"
              "set_native_decoder_messages(sys.argv[2] == 'show')\n"
              "try:\n    read_audio(sys.argv[1])\nexcept AudioError as e:\n    print(e, file=sys.stderr)\n")
    shown = subprocess.run([sys.executable, "-c", script, str(bad), "show"], capture_output=True, text=True, timeout=60)
    hidden = subprocess.run([sys.executable, "-c", script, str(bad), "hide"], capture_output=True, text=True, timeout=60)
    assert "Illegal Audio-MPEG-Header" in shown.stderr, shown.stderr
    assert "Illegal Audio-MPEG-Header" not in hidden.stderr and "glitch.mp3: truncated or corrupt" in hidden.stderr
