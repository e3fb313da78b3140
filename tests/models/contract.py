"""Checks of the model contract shared by the contract tests (every architecture, the oracle models)."""
from __future__ import annotations

import copy

import torch
from torch import nn

_PLAIN = (type(None), bool, int, float, str, tuple, list, dict, set, frozenset)


def snapshot(model: nn.Module) -> list[tuple[str, str, object]]:
    """Every attribute of every submodule: tensors cloned, plain data deep-copied, other objects by identity."""
    snap = []
    for prefix, module in model.named_modules():
        for key, value in vars(module).items():
            if key in ("_parameters", "_buffers", "_modules"):
                snap.append((prefix, key, tuple(value)))  # the names (tensors are compared below)
                continue
            if isinstance(value, torch.Tensor):
                snap.append((prefix, key, value.detach().clone()))
            elif isinstance(value, _PLAIN):
                snap.append((prefix, key, copy.deepcopy(value)))
            else:
                snap.append((prefix, key, value))
    snap.append(("", "state", {k: v.detach().clone() for k, v in model.state_dict().items()}))
    return snap


def same(a: object, b: object) -> bool:
    """Tensors equal in shape, dtype and values; containers element-wise; plain data by value; objects by identity."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.shape == b.shape and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, _PLAIN):
        return a == b
    return a is b


def changed_attributes(before: list[tuple[str, str, object]], after: list[tuple[str, str, object]]) -> list[str]:
    """Names of the attributes that differ between two :func:`snapshot` of the same model (added ones included)."""
    old = {(p, k): v for p, k, v in before}
    new = {(p, k): v for p, k, v in after}
    return sorted(f"{p or '<model>'}.{k}" for key in old.keys() | new.keys() for p, k in [key]
                  if key not in old or key not in new or not same(old[key], new[key]))
