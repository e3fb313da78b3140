"""Helpers for tests that compare stemwright's Demucs models with demucs 4.1.0 (a test-only reference package)."""
from __future__ import annotations

import dataclasses
import sys
import types
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from stemwright.models.htdemucs import HTDemucsConfig
from tests.reference import require


def demucs_modules():
    """The reference package with ``demucs.apply``, ``.hdemucs``, ``.htdemucs``, ``.states`` imported. torchaudio is not
    installable here and the model code does not use it: an empty stand-in satisfies demucs' module-level imports."""
    sys.modules.setdefault("torchaudio", types.ModuleType("torchaudio"))
    for module in ("demucs.apply", "demucs.hdemucs", "demucs.htdemucs", "demucs.states"):
        require(module)
    return sys.modules["demucs"]


def demucs_kwargs(config) -> dict:
    """The demucs constructor keywords of a stemwright config (same names)."""
    kw = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    kw["sources"] = list(kw["sources"])
    for key in ("multi_freqs", "t_cape_glob_loc_scale"):
        if key in kw:
            kw[key] = list(kw[key])
    return kw


def reference_model(config, seed: int):
    """A demucs ``HTDemucs``/``HDemucs`` with the keywords of a stemwright config and seeded random weights, in eval mode."""
    dm = demucs_modules()
    torch.manual_seed(seed)
    klass = dm.htdemucs.HTDemucs if isinstance(config, HTDemucsConfig) else dm.hdemucs.HDemucs
    return klass(**demucs_kwargs(config)).eval()


def save_th(model, folder: Path, sig: str, half: bool = True) -> Path:
    """Write ``SIG-<sha256[:8]>.th`` exactly as demucs does (``serialize_model`` + ``save_with_checksum``); the
    training args carry the kinds of plain data real packages hold (numpy scalars, fractions, paths)."""
    states = demucs_modules().states
    args, kwargs = model._init_args_kwargs
    kwargs = dict(kwargs)
    if "segment" in kwargs:
        kwargs["segment"] = Fraction(kwargs["segment"]).limit_denominator(1000)
    package = {
        "klass": model.__class__,
        "args": args,
        "kwargs": kwargs,
        "state": states.get_state(model, None, half=half),
        "training_args": {"seed": 42, "lr": np.float64(3e-4), "segment": Fraction(39, 5),
                          "dset": {"wav": Path("/data/wav"), "sources": ["drums", "bass"]}},
    }
    folder.mkdir(parents=True, exist_ok=True)
    states.save_with_checksum(package, folder / f"{sig}.th")
    (path,) = folder.glob(f"{sig}-*.th")
    return path
