"""Audio in and out: decoding any common format, resampling, writing stems safely."""
from stemdeck.audio.io import AudioError, AudioFile, read_audio, write_audio
from stemdeck.audio.resample import resample

__all__ = ["AudioError", "AudioFile", "read_audio", "write_audio", "resample"]
