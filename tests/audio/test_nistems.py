"""NI Stems files: written by stemwright, read back by stemwright, ffprobe and stempeg (an independent reader), and
stemwright's reader on the NI-made example file that ships with stempeg."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from stemwright.audio.io import AudioError, audio_stream_count, read_audio
from stemwright.audio.nistems import (
    NI_SLOTS, NiStemsError, StemsMetadata, add_stem_box, group_stems, read_ni_stems, read_stem_metadata,
    write_ni_stems,
)
from stemwright.cli.main import main
from tests.reference import in_ci, require

SR = 44100
N = 2 * SR + 123  # not a whole number of AAC frames


def _stems(seed: int = 0) -> dict[str, np.ndarray]:
    """Four distinct broadband stems (smoothed noise: a lag of one sample shows as a large error)."""
    rng = np.random.default_rng(seed)
    out = {}
    for i, name in enumerate(NI_SLOTS):
        x = np.convolve(rng.standard_normal(N), np.ones(4 + 2 * i) / (4 + 2 * i), "same") * 0.08
        out[name] = np.stack([x, 0.7 * x]).astype(np.float32)
    return out


def _snr_db(ref: np.ndarray, est: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(ref ** 2) / np.mean((est - ref) ** 2)))


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> tuple[Path, dict[str, np.ndarray], np.ndarray]:
    stems = _stems()
    mix = sum(stems.values())
    path = tmp_path_factory.mktemp("ni") / "song.stem.mp4"
    report = write_ni_stems(path, mix, stems, SR)
    assert report["samples"] == N and report["codec"] == "aac" and report["bitrate"] == 256_000
    return path, stems, mix


def _ffprobe() -> str:
    exe = shutil.which("ffprobe")
    if exe is None:
        if in_ci():
            pytest.fail("ffprobe not found (Debian package ffmpeg, scripts/setup.sh --dev)", pytrace=False)
        pytest.skip("ffprobe not found (apt-get install ffmpeg)")
    return exe


def test_our_reader_sees_five_aligned_streams(written):
    path, stems, mix = written
    assert audio_stream_count(path) == 5
    got = read_ni_stems(path)
    assert got.samplerate == SR and got.metadata.names == NI_SLOTS
    # AAC pads the last packet to a multiple of 16 samples: the length is the source's, up to 15 samples more
    assert N <= got.mixture.shape[1] < N + 16
    # sample-aligned: the encoder's priming is skipped (edit list), and a one-sample lag would be far worse
    # (broadband noise is hard for FFmpeg's AAC encoder: ~18 dB SNR at 256 kbit/s; a one-sample lag gives ~6 dB)
    assert _snr_db(mix[:, :N], got.mixture[:, :N]) > 15
    assert _snr_db(mix[:, 1:N], got.mixture[:, :N - 1]) < 10
    for name in NI_SLOTS:
        assert _snr_db(stems[name], got.stems[name][:, :N]) > 12, name
    # decoding the stems and summing them gives the mixture within codec tolerance
    assert _snr_db(got.mixture, sum(got.stems.values())) > 12  # five independent AAC encodings of noise: ~16 dB


def test_layout_matches_ni_files(written):
    path, _, _ = written
    data = path.read_bytes()
    assert data[8:12] == b"M4A "  # major brand, as NI Stem Creator and MP4Box -brand M4A:0
    meta = read_stem_metadata(path)
    assert meta == StemsMetadata()
    assert meta.to_json()["stems"][0] == {"name": "drums", "color": "#009E73"}
    assert set(meta.to_json()["mastering_dsp"]) == {"compressor", "limiter"}


def test_ffprobe_sees_five_audio_streams_of_the_right_length(written):
    path, _, _ = written
    out = subprocess.run([_ffprobe(), "-v", "error", "-show_entries",
                          "stream=codec_type,codec_name,sample_rate,channels,duration_ts:stream_tags=handler_name"
                          ":stream_disposition=default", "-of", "json", str(path)],
                         capture_output=True, text=True, check=True).stdout
    streams = json.loads(out)["streams"]
    assert [s["codec_type"] for s in streams] == ["audio"] * 5
    assert {s["codec_name"] for s in streams} == {"aac"} and {int(s["channels"]) for s in streams} == {2}
    assert all(N <= int(s["duration_ts"]) < N + 16 for s in streams)
    assert [s["tags"]["handler_name"] for s in streams] == ["mixture", *NI_SLOTS]
    assert [s["disposition"]["default"] for s in streams] == [1, 0, 0, 0, 0]  # only the mixture plays by default


def test_stempeg_reads_stems_and_names(written):
    _ffprobe()
    stempeg = require("stempeg")
    path, stems, mix = written
    audio, rate = stempeg.read_stems(str(path))
    assert rate == SR and audio.shape[0] == 5 and audio.shape[2] == 2
    assert _snr_db(mix[:, :N], audio[0, :N].T) > 15
    for i, name in enumerate(NI_SLOTS, 1):
        assert _snr_db(stems[name], audio[i, :N].T) > 12, name
    assert stempeg.Info(str(path)).title_streams == ["mixture", *NI_SLOTS]


def test_reader_on_the_ni_example_file():
    stempeg = require("stempeg")
    example = Path(stempeg.__file__).parent / "data" / "The Easton Ellises - Falcon 69.stem.mp4"
    meta = read_stem_metadata(example)
    assert meta.names == ("Drums", "Bass", "Other", "Vox") or len(meta.names) == 4
    got = read_ni_stems(example)
    assert len(got.stems) == 4 and got.mixture.shape[0] == 2
    assert _snr_db(got.mixture, sum(got.stems.values())) > 10


def test_alac_is_lossless(tmp_path):
    stems = _stems(1)
    mix = sum(stems.values())
    path = tmp_path / "lossless.stem.mp4"
    write_ni_stems(path, mix, stems, SR, codec="alac")
    got = read_ni_stems(path)
    assert got.mixture.shape[1] == N
    assert np.abs(got.mixture - mix).max() < 2 / 32768  # 16-bit ALAC
    assert np.abs(got.stems["vocals"] - stems["vocals"]).max() < 2 / 32768


def test_grouping():
    assert group_stems(["vocals", "drums", "bass", "other"]) == {
        "drums": ("drums",), "bass": ("bass",), "other": ("other",), "vocals": ("vocals",)}
    six = group_stems(["drums", "bass", "other", "vocals", "guitar", "piano"])
    assert six["other"] == ("other", "guitar", "piano")
    with pytest.raises(NiStemsError, match="vocals, accompaniment: no drums, bass"):
        group_stems(["vocals", "accompaniment"])


def test_bad_input(tmp_path, written):
    stems = _stems()
    mix = sum(stems.values())
    with pytest.raises(NiStemsError, match="in that order"):
        write_ni_stems(tmp_path / "a.stem.mp4", mix, dict(reversed(stems.items())), SR)
    with pytest.raises(NiStemsError, match="differ in length"):
        write_ni_stems(tmp_path / "a.stem.mp4", mix[:, :-5], stems, SR)
    with pytest.raises(NiStemsError, match="sample rate"):
        write_ni_stems(tmp_path / "a.stem.mp4", mix, stems, 44101)
    with pytest.raises(AudioError, match="already exists"):
        write_ni_stems(written[0], mix, stems, SR)
    assert list(tmp_path.iterdir()) == []  # nothing half-written left behind
    wav = tmp_path / "plain.wav"
    sf.write(wav, mix.T, SR)
    with pytest.raises(NiStemsError, match="5 audio streams"):
        read_ni_stems(wav)
    with pytest.raises(NiStemsError, match="not an MP4"):
        add_stem_box(wav, StemsMetadata())
    with pytest.raises(NiStemsError, match="#RRGGBB"):
        StemsMetadata(colours=("red",) * 4)


def test_read_audio_picks_a_stream(written):
    path, stems, _ = written
    vocals = read_audio(path, stream=4).samples[:, :N]
    assert _snr_db(stems["vocals"], vocals) > 12
    with pytest.raises(AudioError, match="no stream 5"):
        read_audio(path, stream=5)


def test_cli_export(tmp_path, capsys):
    folder = tmp_path / "song"
    folder.mkdir()
    stems = _stems(2)
    stems["guitar"] = stems["other"] * 0.5
    for name, x in stems.items():
        sf.write(folder / f"{name}.wav", x.T, SR, subtype="FLOAT")
    out = tmp_path / "song.stem.mp4"
    assert main(["export", str(folder), "--format", "ni-stems", "-o", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert sorted(report["groups"]["other"]) == ["guitar", "other"] and report["mixture"] == "sum of the stems"
    got = read_ni_stems(out)
    assert _snr_db(stems["other"] + stems["guitar"], got.stems["other"][:, :N]) > 12
    before = out.read_bytes()
    assert main(["export", str(folder), "--format", "ni-stems", "-o", str(out)]) == 1
    assert "already exists" in capsys.readouterr().err and out.read_bytes() == before
    assert main(["export", str(folder), "--format", "wav", "-o", str(tmp_path / "x")]) == 2
    capsys.readouterr()
    two = tmp_path / "two"
    two.mkdir()
    for name in ("vocals", "accompaniment"):
        sf.write(two / f"{name}.wav", stems["bass"].T, SR)
    assert main(["export", str(two), "--format", "ni-stems", "-o", str(tmp_path / "two.stem.mp4")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "NI Stems needs four stems" in err and "folded into other" in err
    assert not (tmp_path / "two.stem.mp4").exists()
    assert main(["export", "-h"]) == 0
    assert "export-onnx" in capsys.readouterr().out


def test_tracks_encoded_in_parallel_give_the_same_file(tmp_path):
    """The five tracks are encoded in threads (issue 23: an NI Stems export of a 3.5-minute song took minutes one
    block of each track at a time); the file is the same byte for byte whatever the number of threads."""
    from stemwright.audio.nistems import NI_SLOTS, write_ni_stems

    rng = np.random.default_rng(3)
    stems = {n: (0.1 * rng.standard_normal((2, 44100))).astype(np.float32) for n in NI_SLOTS}
    mix = sum(stems.values())
    one = write_ni_stems(tmp_path / "one.stem.mp4", mix, stems, 44100, workers=1)["path"]
    five = write_ni_stems(tmp_path / "five.stem.mp4", mix, stems, 44100, workers=5)["path"]
    assert Path(one).read_bytes() == Path(five).read_bytes()
