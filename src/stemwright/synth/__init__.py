"""Synthetic multitrack songs for training separators (the idea of Slakh2100: MIDI rendered with sampled
instruments), with real singing from MIR-1K.

Python API::

    from stemwright.synth import generate_song, generate_dataset
    song = generate_song(seed=7, seconds=30)  # .stems {drums,bass,other,vocals} (2, T), .mixture, .metadata
    generate_dataset("data/synth", songs=100, seconds=30, seed=0, jobs=2)   # MUSDB18 layout on disk

See docs/synth.md.
"""

from stemwright.synth.dataset import SongExistsError, generate_dataset, song_name, song_seed, write_song
from stemwright.synth.resources import MissingPackageError, find_resources
from stemwright.synth.song import SAMPLERATE, STEMS, SynthSong, generate_song
from stemwright.synth.vocals import DEFAULT_MIR1K_DIR

__all__ = [
    "DEFAULT_MIR1K_DIR",
    "MissingPackageError",
    "SAMPLERATE",
    "STEMS",
    "SongExistsError",
    "SynthSong",
    "find_resources",
    "generate_dataset",
    "generate_song",
    "song_name",
    "song_seed",
    "write_song",
]
