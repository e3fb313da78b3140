"""Inference engine: chunk planning, crossfade overlap-add, batching, shift TTA, devices, progress."""
from stemwright.engine.progress import ProgressCallback, ProgressEvent
from stemwright.engine.run import separate_tensor

__all__ = ["ProgressCallback", "ProgressEvent", "separate_tensor"]
