"""A Standard MIDI File (format 0) of drum hits on the GM percussion channel, written without a MIDI library (the
format is a few bytes per event; mido/pretty_midi are only in the ``[synth]`` extra)."""
from __future__ import annotations

import struct
from pathlib import Path

from stemwright.atomic import atomic_write_text

PPQ = 960
TEMPO_US = 500_000  # 120 bpm: one tick = 1/1920 s, so times keep ~0.5 ms precision whatever the song's tempo
DRUM_CHANNEL = 9  # MIDI channel 10
NOTE_S = 0.05  # note length (drum notes are one-shots; DAWs want a note-off)


def _vlq(n: int) -> bytes:
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def drum_smf(notes: list[tuple[float, int, int]]) -> bytes:
    """The SMF bytes of ``notes`` = ``[(time_s, gm_note, velocity)]`` at 120 bpm, :data:`PPQ` ticks a beat."""
    ticks_per_s = PPQ * 1_000_000 / TEMPO_US
    events: list[tuple[int, int, bytes]] = []
    for t, note, vel in notes:
        on = int(round(max(t, 0.0) * ticks_per_s))
        events.append((on, 1, bytes([0x90 | DRUM_CHANNEL, note & 0x7F, max(1, min(127, vel))])))
        events.append((on + int(NOTE_S * ticks_per_s), 0, bytes([0x80 | DRUM_CHANNEL, note & 0x7F, 0])))
    events.sort(key=lambda e: (e[0], e[1]))  # note-offs before note-ons at the same tick
    track = bytearray(b"\x00\xff\x51\x03" + TEMPO_US.to_bytes(3, "big"))
    now = 0
    for tick, _, data in events:
        track += _vlq(tick - now) + data
        now = tick
    track += b"\x00\xff\x2f\x00"
    return b"MThd" + struct.pack(">IHHH", 6, 0, 1, PPQ) + b"MTrk" + struct.pack(">I", len(track)) + bytes(track)


def write_drum_midi(path: str | Path, notes: list[tuple[float, int, int]]) -> Path:
    """Write :func:`drum_smf` atomically."""
    return atomic_write_text(path, drum_smf(notes))


__all__ = ["drum_smf", "write_drum_midi", "PPQ"]
