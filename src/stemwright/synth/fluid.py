"""Render instrument parts with FluidSynth (Debian ``libfluidsynth3``, pulled in by the ``fluidsynth`` package).

The library is driven in-process through ctypes: each worker process loads each soundfont once and keeps the
synthesiser, so a song costs only its rendering (``fluidsynth -F`` reloads and, for the compressed MuseScore
``.sf3``, re-decodes the soundfont at every call: about 6 s per part instead of a fraction of a second).
Notes are scheduled sample-accurately up to FluidSynth's 64-sample block; FluidSynth's own reverb and chorus are
off (effects are applied per stem by :mod:`stemwright.synth.production`). The synthesiser is reset before each part,
so a part renders the same whatever was rendered before it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import threading
from pathlib import Path

import numpy as np
import pretty_midi

from stemwright.errors import StemwrightError
from stemwright.synth.parts import Note

log = logging.getLogger(__name__)

LIBRARY_NAMES = ("libfluidsynth.so.3", "libfluidsynth.so.2", "libfluidsynth.so")
GAIN = 0.6
_lock = threading.Lock()


class RenderError(StemwrightError):
    """FluidSynth failed; the message names the soundfont or part."""


def find_library() -> str | None:
    """Path or soname of libfluidsynth, or None when it is not installed."""
    for name in LIBRARY_NAMES:
        try:
            ctypes.CDLL(name)
            return name
        except OSError:
            continue
    return ctypes.util.find_library("fluidsynth")


@functools.lru_cache(maxsize=1)
def _lib(name: str) -> ctypes.CDLL:
    lib = ctypes.CDLL(name)
    vp, cp, ci, cd, cf = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_double, ctypes.c_float
    sigs = {
        "new_fluid_settings": ([], vp),
        "fluid_settings_setnum": ([vp, cp, cd], ci),
        "fluid_settings_setint": ([vp, cp, ci], ci),
        "new_fluid_synth": ([vp], vp),
        "fluid_synth_sfload": ([vp, cp, ci], ci),
        "fluid_synth_program_select": ([vp, ci, ci, ci, ci], ci),
        "fluid_synth_noteon": ([vp, ci, ci, ci], ci),
        "fluid_synth_noteoff": ([vp, ci, ci], ci),
        "fluid_synth_write_float": ([vp, ci, vp, ci, ci, vp, ci, ci], ci),
        "fluid_synth_system_reset": ([vp], ci),
        "fluid_synth_set_gain": ([vp, cf], None),
        "fluid_set_log_function": ([ci, vp, vp], vp),
        "fluid_synth_get_sfont_by_id": ([vp, ci], vp),
        "fluid_synth_add_sfont": ([vp, vp], ci),
        "fluid_synth_remove_sfont": ([vp, vp], ci),
        "delete_fluid_synth": ([vp], None),
        "delete_fluid_settings": ([vp], None),
    }
    for fn, (args, res) in sigs.items():
        f = getattr(lib, fn)
        f.argtypes, f.restype = args, res
    for level in (2, 3, 4):  # silence WARN/INFO/DBG ("No preset found" etc.); errors still surface as return codes
        lib.fluid_set_log_function(level, None, None)
    return lib


class _Synth:
    """A soundfont loaded once into a "keeper" synthesiser; each part renders in a fresh synthesiser sharing it.

    Why fresh: FluidSynth reuses voice objects whose smoothing state survives ``system_reset`` (a part's first
    attack differed by up to 1e-2 depending on the previous part). Why a keeper: it keeps every program used
    selected on its own channel, so the dynamically loaded (for ``.sf3``: Vorbis-decoded) samples stay in memory.
    """

    def __init__(self, library: str, soundfont: Path, samplerate: int):
        self.lib = _lib(library)
        self.samplerate = samplerate
        self.keeper, self._keeper_settings = self._new_synth(channels=256)
        self.keeper_id = self.lib.fluid_synth_sfload(self.keeper, str(soundfont).encode(), 0)
        if self.keeper_id < 0:
            raise RenderError(f"{soundfont}: FluidSynth cannot load this soundfont")
        self.sfont = self.lib.fluid_synth_get_sfont_by_id(self.keeper, self.keeper_id)
        self.soundfont = soundfont
        self.kept: set[int] = set()

    def _new_synth(self, channels: int = 16) -> tuple[int, int]:
        lib = self.lib
        settings = lib.new_fluid_settings()
        lib.fluid_settings_setnum(settings, b"synth.sample-rate", float(self.samplerate))
        for key, value in (
            (b"synth.reverb.active", 0),
            (b"synth.chorus.active", 0),
            (b"synth.polyphony", 256),
            (b"synth.dynamic-sample-loading", 1),
            (b"synth.cpu-cores", 1),
            (b"synth.midi-channels", channels),
        ):
            lib.fluid_settings_setint(settings, key, value)
        synth = lib.new_fluid_synth(settings)
        if not synth:
            raise RenderError(f"FluidSynth could not create a synthesiser at {self.samplerate} Hz")
        lib.fluid_synth_set_gain(synth, GAIN)
        return synth, settings

    def _keep(self, program: int) -> None:
        if program not in self.kept:  # channel 2p is never a percussion channel (9 mod 16)
            if self.lib.fluid_synth_program_select(self.keeper, 2 * program, self.keeper_id, 0, program) != 0:
                raise RenderError(f"{self.soundfont}: GM program {program} is missing from the soundfont")
            self.kept.add(program)

    def render(self, notes: list[pretty_midi.Note], program: int, n_samples: int, samplerate: int) -> np.ndarray:
        """Shape: returns ``(2, n_samples)`` float32."""
        self._keep(program)
        lib = self.lib
        synth, settings = self._new_synth()
        try:
            sfid = lib.fluid_synth_add_sfont(synth, self.sfont)
            if sfid < 0 or lib.fluid_synth_program_select(synth, 0, sfid, 0, program) != 0:
                raise RenderError(f"{self.soundfont}: cannot select GM program {program}")
            return self._play(synth, notes, n_samples, samplerate)
        finally:
            lib.fluid_synth_remove_sfont(synth, self.sfont)
            lib.delete_fluid_synth(synth)
            lib.delete_fluid_settings(settings)

    def _play(self, synth: int, notes: list[pretty_midi.Note], n_samples: int, samplerate: int) -> np.ndarray:
        lib = self.lib
        events = []
        for n in notes:
            on = int(round(n.start * samplerate))
            off = max(on + 1, int(round(n.end * samplerate)))
            if on < n_samples:
                events.append((on, 1, n.pitch, n.velocity))
                events.append((off, 0, n.pitch, 0))
        events.sort()  # at equal times note-offs (0) come before note-ons (1)
        left = np.zeros(n_samples, dtype=np.float32)
        right = np.zeros(n_samples, dtype=np.float32)
        lp, rp = left.ctypes.data_as(ctypes.c_void_p), right.ctypes.data_as(ctypes.c_void_p)
        pos = 0
        for t, kind, pitch, vel in events + [(n_samples, -1, 0, 0)]:
            t = min(t, n_samples)
            if t > pos:
                lib.fluid_synth_write_float(synth, t - pos, lp, pos, 1, rp, pos, 1)
                pos = t
            if kind == 1:
                lib.fluid_synth_noteon(synth, 0, int(pitch), int(vel))
            elif kind == 0:
                lib.fluid_synth_noteoff(synth, 0, int(pitch))
        return np.stack([left, right])


_SYNTHS: dict[tuple[str, int], _Synth] = {}


def _synth_for(library: str, soundfont: Path, samplerate: int) -> _Synth:
    key = (str(soundfont), samplerate)
    if key not in _SYNTHS:
        log.debug("loading soundfont %s", soundfont)
        _SYNTHS[key] = _Synth(library, soundfont, samplerate)
    return _SYNTHS[key]


def render_part(
    inst: pretty_midi.Instrument, soundfont: Path, n_samples: int, samplerate: int, library: str
) -> np.ndarray:
    """Render a pretty_midi instrument (GM ``inst.program``, bank 0) with ``soundfont``.

    Shape: returns ``(2, n_samples)`` float32; notes starting after the end are dropped, sounding ones cut.
    """
    if not inst.notes:
        return np.zeros((2, n_samples), dtype=np.float32)
    with _lock:  # a FluidSynth instance is not re-entrant
        return _synth_for(library, soundfont, samplerate).render(inst.notes, inst.program, n_samples, samplerate)


def part_to_midi(notes: list[Note], program: int, name: str = "", is_drum: bool = False) -> pretty_midi.Instrument:
    """The part as a pretty_midi instrument (note times in seconds)."""
    inst = pretty_midi.Instrument(program=program, is_drum=is_drum, name=name)
    for n in notes:
        inst.notes.append(
            pretty_midi.Note(
                velocity=int(n.velocity), pitch=int(n.pitch), start=float(n.start), end=float(n.start + n.length)
            )
        )
    return inst
