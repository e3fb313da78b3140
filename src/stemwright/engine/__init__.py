"""Inference engine: chunk planning, crossfade overlap-add, batching, shift TTA, devices, progress."""
from stemdeck.engine.progress import ProgressCallback, ProgressEvent
from stemdeck.engine.run import separate_tensor

__all__ = ["ProgressCallback", "ProgressEvent", "separate_tensor"]
