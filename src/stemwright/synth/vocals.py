"""Real sung vocals from the MIR-1K ``train`` clips (right channel = singing voice), placed over vocal sections.

The ``dev`` split is never used (it is kept for validation); a folder named ``dev`` is refused.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from stemwright.audio.resample import resample
from stemwright.synth.compose import SongPlan

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_MIR1K_DIR = REPO_ROOT.parent / "shared" / "data" / "mir1k" / "train"
CLIP_EXTENSIONS = (".opus", ".wav", ".flac", ".ogg")
VOICE_CHANNEL = 1  # MIR-1K: left = accompaniment, right = singing voice


@dataclass(frozen=True)
class VocalClip:
    path: Path
    singer: str
    song: str


def check_not_dev(folder: Path) -> None:
    if "dev" in (p.lower() for p in folder.resolve().parts[-2:]):
        raise ValueError(f"{folder}: the MIR-1K dev clips are for validation only; point mir1k_dir at the train folder")


@functools.lru_cache(maxsize=4)
def list_clips(folder: Path) -> tuple[VocalClip, ...]:
    """Clips of a MIR-1K folder, named ``<singer>_<song>_<part>``; empty when the folder does not exist."""
    if not folder.is_dir():
        return ()
    check_not_dev(folder)
    clips = []
    for p in sorted(folder.iterdir()):
        if p.suffix.lower() in CLIP_EXTENSIONS and p.is_file():
            parts = p.stem.split("_")
            clips.append(VocalClip(p, parts[0], "_".join(parts[:2])))
    return tuple(clips)


@functools.lru_cache(maxsize=64)
def load_voice(path: Path, samplerate: int) -> np.ndarray:
    """The singing-voice channel of a clip resampled to ``samplerate``. Shape: (T,) float32."""
    data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    if data.shape[1] < 2:
        raise ValueError(f"{path}: MIR-1K clips are stereo (voice on the right channel); this one has {data.shape[1]}")
    voice = resample(data[:, VOICE_CHANNEL][None], sr, samplerate, quality="HQ")[0]
    voice.setflags(write=False)
    return voice


def _rms_normalised(x: np.ndarray, target_db: float = -20.0) -> np.ndarray:
    """Scale so the RMS over the loud half of 50 ms frames is ``target_db`` dBFS (silences do not count)."""
    frame = 2205
    n = len(x) // frame
    if n == 0:
        return x.copy()
    energy = (x[: n * frame].reshape(n, frame) ** 2).mean(axis=1)
    loud = np.sort(energy)[n // 2 :]
    rms = float(np.sqrt(loud.mean())) if loud.size else 0.0
    return x * np.float32(10 ** (target_db / 20) / rms) if rms > 1e-6 else x.copy()


def place_vocals(
    plan: SongPlan, clips: tuple[VocalClip, ...], n_samples: int, samplerate: int, rng: np.random.Generator
) -> tuple[np.ndarray, list[dict]]:
    """Lay clips of one singer end to end over the vocal sections (phrases start on bar lines).

    Shape: returns a mono ``(n_samples,)`` float32 voice track and the placements for the song's JSON.
    """
    track = np.zeros(n_samples, dtype=np.float32)
    singers = sorted({c.singer for c in clips})
    singer = singers[int(rng.integers(len(singers)))]
    mine = [c for c in clips if c.singer == singer]
    order = rng.permutation(len(mine))
    placements: list[dict] = []
    k = 0
    spb = plan.seconds_per_beat()
    for sec in plan.sections:
        if not sec.vocals:
            continue
        bar = 0
        while bar < sec.bars:
            start_s = (sec.start + bar * plan.beats_per_bar) * spb
            end_s = sec.end * spb
            start = int(round(start_s * samplerate))
            if start >= n_samples:
                break
            clip = mine[int(order[k % len(order)])]
            k += 1
            voice = _rms_normalised(load_voice(clip.path, samplerate))
            room = int(round(end_s * samplerate)) - start
            length = min(len(voice), room, n_samples - start)
            seg = voice[:length].copy()
            fade = min(length, int(0.05 * samplerate))  # 50 ms fade where a clip is cut at a section end
            if length < len(voice) and fade > 0:
                seg[-fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
            track[start : start + length] += seg
            placements.append(
                {
                    "clip": clip.path.name,
                    "singer": singer,
                    "start_s": round(start_s, 4),
                    "end_s": round(start_s + length / samplerate, 4),
                }
            )
            used_bars = int(np.ceil(len(voice) / samplerate / spb / plan.beats_per_bar))
            bar += used_bars + int(rng.integers(0, 2))  # sometimes a bar's breath between phrases
    return track, placements
