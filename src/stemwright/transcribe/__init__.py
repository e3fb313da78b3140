"""Stems to MIDI with basic-pitch (Apache-2.0; its ONNX model ships in its wheel): ``stemwright transcribe``.

``transcribe_folder(stems_dir, outdir)`` writes ``<stem>.mid`` per pitched stem at the song's tempo and
``transcription.json``; ``transcribe_stems(arrays, samplerate)`` returns the notes. Needs the ``[transcribe]``
extra and ``pip install --no-deps basic-pitch==0.4.0`` (:data:`~stemwright.transcribe.model.INSTALL_HINT`).
``score.py``: note F-measure against known MIDI (``mir_eval.transcription``), for the benchmark and the tests.
"""
from stemwright.transcribe.model import INSTALL_HINT, MODEL, BasicPitch, Note, NoteSettings, TranscribeUnavailable
from stemwright.transcribe.run import (MANIFEST, StemFile, StemNotes, TranscribeError, Transcription,
                                       TranscriptionManifest, TranscriptionResult, transcribe_folder, transcribe_stems)

__all__ = ["INSTALL_HINT", "MODEL", "MANIFEST", "BasicPitch", "Note", "NoteSettings", "StemFile", "StemNotes", "TranscribeError",
           "TranscribeUnavailable", "Transcription", "TranscriptionManifest", "TranscriptionResult", "transcribe_folder", "transcribe_stems"]
