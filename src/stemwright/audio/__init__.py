"""Audio in and out: decoding any common format, resampling, writing stems safely."""
from stemwright.audio.io import AudioError, AudioFile, read_audio, write_audio
from stemwright.audio.resample import resample

__all__ = ["AudioError", "AudioFile", "read_audio", "write_audio", "resample"]
