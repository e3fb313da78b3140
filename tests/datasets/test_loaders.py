"""Dataset loaders on the shared data and on small generated layouts (wav folders, .stem.mp4, folder, MIR-1K)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from stemwright.datasets import DatasetError, decode_stem_mp4, open_dataset

SR = 44100
STEMS = ("drums", "bass", "other", "vocals")


def _tone(freq: float, n: int, sr: int = SR, channels: int = 2) -> np.ndarray:
    t = np.arange(n) / sr
    return np.stack([0.2 * np.sin(2 * np.pi * freq * t + c) for c in range(channels)]).astype(np.float32)


def _write_musdb(root: Path, name: str, n: int = 8000, ext: str = "wav", skip: str | None = None,
                 short: str | None = None) -> dict[str, np.ndarray]:
    folder = root / name
    folder.mkdir(parents=True)
    stems = {s: _tone(110 * (k + 1), n) for k, s in enumerate(STEMS)}
    for s, x in stems.items():
        if s != skip:
            sf.write(folder / f"{s}.{ext}", (x[:, : n // 2] if s == short else x).T, SR, subtype="FLOAT" if ext == "wav" else "PCM_24")
    sf.write(folder / f"mixture.{ext}", sum(stems.values()).T, SR, subtype="FLOAT" if ext == "wav" else "PCM_24")
    return stems


def test_shared_musdb_excerpt_loads(musdb_excerpt):
    ds = open_dataset(musdb_excerpt, "musdb", "test")  # no split subfolder: tracks directly under the root
    assert len(ds) == 1
    track = ds[0]
    assert track.name == "Music Delta - 80s Rock" and track.samplerate == 44100
    assert track._cache is None  # lazy: nothing decoded yet
    assert set(track.sources) == set(STEMS)
    assert all(v.shape == (2, 300032) and v.dtype == np.float32 for v in track.sources.values())
    assert track.mixture.shape == (2, 300032)
    track.unload()
    assert track._cache is None


def test_shared_mir1k_dev_loads(shared_data):
    ds = open_dataset(shared_data / "mir1k", "mir1k", "dev")
    assert len(ds) == 86
    clip = ds.by_name("Ani_1_01")
    assert clip.samplerate == 16000
    raw, sr = sf.read(clip.path, always_2d=True, dtype="float32")
    np.testing.assert_array_equal(clip.sources["accompaniment"][0], raw[:, 0])  # left = accompaniment
    np.testing.assert_array_equal(clip.sources["vocals"][0], raw[:, 1])  # right = voice
    np.testing.assert_allclose(clip.mixture[0], raw[:, 0] + raw[:, 1])  # 0 dB sum


@pytest.mark.parametrize("ext", ["wav", "flac"])
def test_musdb_split_layout(tmp_path, ext):
    stems = _write_musdb(tmp_path / "test", "b song", ext=ext)
    _write_musdb(tmp_path / "test", "a song", ext=ext)
    _write_musdb(tmp_path / "train", "c song", ext=ext)
    ds = open_dataset(tmp_path, "musdb", "test")
    assert [t.name for t in ds] == ["a song", "b song"]
    assert ds[1].subset == "test"
    np.testing.assert_allclose(ds[1].sources["bass"], stems["bass"], atol=1e-6)
    assert [t.name for t in open_dataset(tmp_path, "musdb", "train")] == ["c song"]


def test_musdb_missing_and_short_stems_name_the_track(tmp_path):
    _write_musdb(tmp_path, "broken", skip="vocals")
    with pytest.raises(DatasetError, match="'broken'.*missing stem.*vocals"):
        open_dataset(tmp_path, "musdb")
    _write_musdb(tmp_path / "x", "short one", short="bass")
    with pytest.raises(DatasetError, match="'short one'.*different lengths"):
        open_dataset(tmp_path / "x", "musdb")


def _write_stem_mp4(path: Path, arrays: list[np.ndarray]) -> None:
    import av

    with av.open(str(path), "w", format="mp4") as out:
        streams = []
        for _ in arrays:
            st = out.add_stream("aac", rate=SR)
            st.layout = "stereo"
            streams.append(st)
        for st, x in zip(streams, arrays):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(x), format="fltp", layout="stereo")
            frame.sample_rate = SR
            for packet in st.encode(frame):
                out.mux(packet)
            for packet in st.encode(None):
                out.mux(packet)


def test_stem_mp4_stream_order(tmp_path):
    n = SR
    stems = [_tone(f, n) for f in (220.0, 330.0, 550.0, 770.0)]  # drums, bass, other, vocals
    mix = sum(stems)
    folder = tmp_path / "test"
    folder.mkdir()
    _write_stem_mp4(folder / "Song A.stem.mp4", [mix, *stems])
    ds = open_dataset(tmp_path, "musdb", "test")
    track = ds[0]
    assert track.name == "Song A" and track.samplerate == SR
    decoded, sr = decode_stem_mp4(track.path)
    assert len(decoded) == 5 and sr == SR
    for name, ref in zip(STEMS, stems):
        est = track.sources[name]
        m = min(est.shape[1], ref.shape[1]) - 4096
        # AAC adds a priming delay; compare dominant frequency instead of samples
        spec = np.abs(np.fft.rfft(est[0, 2048 : 2048 + m]))
        peak_hz = np.argmax(spec) * SR / m
        want = {"drums": 220, "bass": 330, "other": 550, "vocals": 770}[name]
        assert abs(peak_hz - want) < 5, (name, peak_hz)
    assert track.mixture.shape == track.sources["vocals"].shape


def test_generic_folder_any_stem_names(tmp_path):
    for song in ("s1", "s2"):
        d = tmp_path / song
        d.mkdir()
        sf.write(d / "lead.wav", _tone(300, 4000).T, SR)
        sf.write(d / "pad.flac", _tone(200, 4000).T, SR)
    ds = open_dataset(tmp_path, "folder", None)
    assert len(ds) == 2 and ds[0].source_names == ("lead", "pad")
    np.testing.assert_allclose(ds[0].mixture, ds[0].sources["lead"] + ds[0].sources["pad"], atol=1e-6)
    (tmp_path / "s2" / "pad.flac").unlink()
    with pytest.raises(DatasetError, match="'s2'.*missing stem.*pad"):
        open_dataset(tmp_path, "folder", None)


def test_errors_name_the_folder(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        open_dataset(tmp_path / "nope", "musdb")
    with pytest.raises(DatasetError, match="no MUSDB18 tracks"):
        open_dataset(tmp_path, "musdb")
    with pytest.raises(DatasetError, match="unknown dataset format"):
        open_dataset(tmp_path, "wavs")
    mono = tmp_path / "m"
    mono.mkdir()
    sf.write(mono / "clip.wav", np.zeros(1000, dtype=np.float32), 16000)
    with pytest.raises(DatasetError, match="clip.*1 channel"):
        open_dataset(mono, "mir1k", None)
