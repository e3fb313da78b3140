"""Mixer engine: the mix document, rendering, effects, loudness, presets, mashups and separation diagnostics.

Submodules are imported on demand; the public names are re-exported lazily by :mod:`stemdeck`
(``stemdeck.Mix``, ``stemdeck.render``, ``stemdeck.inspect``).
"""
from stemdeck.mixer.document import Channel, Master, Mix
from stemdeck.mixer.effects import EFFECTS, Effect, MixError

__all__ = ["Channel", "Master", "Mix", "Effect", "EFFECTS", "MixError"]
