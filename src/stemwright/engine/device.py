"""Device selection: ``auto`` picks CUDA, then Apple MPS, then CPU."""
from __future__ import annotations

import torch

from stemwright.errors import DeviceUnavailable, UnknownDevice

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """Turn a user's device choice into a :class:`torch.device`, with a clear error when it is not available."""
    if isinstance(name, torch.device):
        return name
    name = name.lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceUnavailable(f"device {name!r} requested but CUDA is not available on this machine")
        return torch.device(name)
    if name == "mps":
        if getattr(torch.backends, "mps", None) is None or not torch.backends.mps.is_available():
            raise DeviceUnavailable("device 'mps' requested but Apple MPS is not available on this machine")
        return torch.device("mps")
    if name == "cpu":
        return torch.device("cpu")
    raise UnknownDevice(f"unknown device {name!r}; choose one of {', '.join(DEVICE_CHOICES)}")
