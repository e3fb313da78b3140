"""Mixer engine: the mix document, rendering, effects, loudness, presets, mashups and separation diagnostics.

Submodules are imported on demand; the public names are re-exported lazily by :mod:`stemwright`
(``stemwright.Mix``, ``stemwright.render``, ``stemwright.inspect``).
"""
from stemwright.mixer.document import Channel, Master, Mix
from stemwright.mixer.effects import EFFECTS, Effect, MixError

__all__ = ["Channel", "Master", "Mix", "Effect", "EFFECTS", "MixError"]
