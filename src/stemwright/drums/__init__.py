"""Drum replacement and reinforcement on separated stems: ``stemwright.drums.replace(...)`` (issue 27)."""
from stemwright.drums.hits import CLASSES, Hit, find_hits
from stemwright.drums.kit import Kit, KitError, hydrogen_kits, load_drum_kit
from stemwright.drums.replace import DrumReplacement, render_replacement, replace

__all__ = ["CLASSES", "Hit", "find_hits", "Kit", "KitError", "hydrogen_kits", "load_drum_kit", "DrumReplacement",
           "render_replacement", "replace"]
