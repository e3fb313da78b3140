"""Open-Unmix's published file layouts, loaded into :class:`stemwright.models.umx.OpenUnmix`.

Supported:
- a model folder as written by openunmix's ``scripts/train.py``: ``separator.json`` (``nfft``, ``nhop``,
  ``sample_rate``, ``nb_channels``) + per target ``<target>.json`` (``{"args": {"hidden_size", "nfft", "nhop",
  "nb_channels", ...}}``, optional) and ``<target>.pth`` or ``<target>-<sha256 prefix>.pth`` (the state dict);
- a single target ``.pth`` (e.g. torch.hub's ``vocals-b62c91ce.pth``): a one-target model with a ``residual``
  source (the rest of the mix), settings from a ``separator.json`` beside it if any, else the published defaults;
- a whole ``openunmix.model.Separator`` state dict saved as ``.pth`` (keys ``target_models.<target>.*``).

``.pth`` files are read with ``torch.load(weights_only=True)``: tensors only, no pickled classes. The network's
shape (hidden size, channels, ``max_bin``, layers, direction, FFT size) is read from the tensors themselves;
the hop size and sample rate, which the weights do not carry, come from the JSON files (defaults: 1024, 44100).
Keys the published files carry besides the network (old openunmix's ``stft.window``, ``transform.0.window``,
``sample_rate``) are dropped; any other mismatch is an error naming the file.
"""
from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import torch

from stemwright.errors import StemwrightError
from stemwright.models.umx import UMX_SOURCES, OpenUnmix, UmxConfig

log = logging.getLogger(__name__)

#: Non-network entries found in openunmix files (STFT windows, rate buffer): ignored when loading.
IGNORED_KEYS = re.compile(r"^(stft\.window|istft\.window|transform\.\d+\.window|sample_rate)$")
_HASHED = re.compile(r"^(?P<target>.+?)-(?P<hash>[0-9a-f]{8,64})$")


class UmxFormatError(StemwrightError):
    """An Open-Unmix file or folder cannot be loaded; the message names it and the reason."""


def read_state(path: Path) -> dict[str, torch.Tensor]:
    """A ``.pth`` state dict, loaded without unpickling classes (``weights_only=True``)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle errors, zip errors, refused globals
        raise UmxFormatError(f"{path}: not a readable weights-only torch state dict ({type(e).__name__}: {e})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]  # an openunmix training checkpoint (.chkpnt)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UmxFormatError(f"{path}: expected a dict of tensors (an Open-Unmix state dict)")
    return state


def _is_target_state(state: dict[str, Any]) -> bool:
    return "fc1.weight" in state and "lstm.weight_ih_l0" in state


def _is_separator_state(state: dict[str, Any]) -> bool:
    return any(k.startswith("target_models.") and k.endswith(".fc1.weight") for k in state)


def target_name(path: Path) -> str:
    """``vocals`` for ``vocals.pth`` or ``vocals-b62c91ce.pth``."""
    m = _HASHED.match(path.stem)
    return m.group("target") if m else path.stem


def infer_network(state: dict[str, torch.Tensor], where: str) -> dict[str, Any]:
    """UmxConfig fields that the tensors of one target determine."""
    try:
        hidden, fc1_in = state["fc1.weight"].shape
        max_bin = state["input_mean"].shape[0]
        out_bins = state["output_mean"].shape[0]
    except KeyError as e:
        raise UmxFormatError(f"{where}: missing tensor {e.args[0]!r}; not an Open-Unmix target") from None
    if fc1_in % max_bin:
        raise UmxFormatError(f"{where}: fc1 input {fc1_in} is not a multiple of max_bin {max_bin}")
    layers = sum(1 for k in state if re.fullmatch(r"lstm\.weight_ih_l\d+", k))
    bidirectional = "lstm.weight_ih_l0_reverse" in state
    return {
        "hidden_size": int(hidden),
        "audio_channels": int(fc1_in // max_bin),
        "max_bin": int(max_bin),
        "n_fft": int(2 * (out_bins - 1)),
        "nb_layers": int(layers),
        "unidirectional": not bidirectional,
    }


def _network_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in state.items() if not IGNORED_KEYS.match(k)}


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise UmxFormatError(f"{path}: cannot read JSON ({e})") from None


def _separator_settings(folder: Path) -> dict[str, Any]:
    """hop/rate/nfft/channels from ``separator.json`` when present."""
    path = folder / "separator.json"
    if not path.is_file():
        return {}
    doc = _read_json(path)
    settings: dict[str, Any] = {}
    for src, dst in (("nhop", "hop_length"), ("sample_rate", "samplerate"), ("nfft", "n_fft"), ("nb_channels", "audio_channels")):
        if src in doc:
            settings[dst] = int(doc[src])
    return settings


def _order(targets: list[str]) -> list[str]:
    """The usual order (vocals, drums, bass, other) first, then any others alphabetically."""
    known = [t for t in UMX_SOURCES if t in targets]
    return known + sorted(t for t in targets if t not in UMX_SOURCES)


def build(
    states: dict[str, dict[str, torch.Tensor]],
    settings: dict[str, Any],
    where: str,
    **options: Any,
) -> OpenUnmix:
    """An OpenUnmix with one target per entry of ``states`` (target -> state dict), loaded strictly."""
    first = next(iter(states.values()))
    network = infer_network(first, where)
    for name, state in states.items():
        if infer_network(state, f"{where} ({name})") != network:
            raise UmxFormatError(f"{where}: target {name!r} has a different network shape than the others")
    for key in ("n_fft", "audio_channels"):
        if key in settings and settings[key] != network[key]:
            raise UmxFormatError(f"{where}: {key}={settings[key]} in the JSON but the weights say {network[key]}")
    fields = {**settings, **network, **options, "sources": tuple(states)}
    try:
        config = UmxConfig(**fields)
    except (TypeError, ValueError) as e:
        raise UmxFormatError(f"{where}: {e}") from None
    model = OpenUnmix(config)
    for name, state in states.items():
        try:
            model.target_models[name].load_state_dict(_network_state(state), strict=True)
        except RuntimeError as e:
            raise UmxFormatError(f"{where}: weights of {name!r} do not fit Open-Unmix: {e}") from None
    return model.eval()


def _folder_states(folder: Path) -> dict[str, dict[str, torch.Tensor]]:
    files: dict[str, Path] = {}
    for path in sorted(folder.glob("*.pth")):
        name = target_name(path)
        if name in files:
            raise UmxFormatError(f"{folder}: two weight files for target {name!r}: {files[name].name}, {path.name}")
        files[name] = path
    if not files:
        raise UmxFormatError(f"{folder}: no <target>.pth files")
    return {name: read_state(files[name]) for name in _order(list(files))}


def _target_json_settings(folder: Path, targets: list[str]) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    for t in targets:
        path = folder / f"{t}.json"
        if path.is_file():
            args = _read_json(path).get("args", {})
            if "nhop" in args:
                settings.setdefault("hop_length", int(args["nhop"]))
    return settings


def load_umx(path: str | Path, **options: Any) -> OpenUnmix:
    """Load an Open-Unmix folder, target ``.pth`` or Separator ``.pth`` (see the module docstring).

    ``options`` override UmxConfig fields (e.g. ``niter=0``, ``residual=True``, ``wiener_win_len=None``).
    """
    path = Path(path)
    if path.is_dir():
        states = _folder_states(path)
        settings = {**_target_json_settings(path, list(states)), **_separator_settings(path)}
        return build(states, settings, str(path), **options)
    if path.name == "separator.json":
        return load_umx(path.parent, **options)
    if not path.is_file():
        raise UmxFormatError(f"{path}: not found")
    state = read_state(path)
    settings = _separator_settings(path.parent)
    if _is_separator_state(state):
        names = _order(sorted({k.split(".")[1] for k in state if k.startswith("target_models.")}))
        states = {n: {k.split(".", 2)[2]: v for k, v in state.items() if k.startswith(f"target_models.{n}.")} for n in names}
        return build(states, settings, str(path), **options)
    if _is_target_state(state):
        options.setdefault("residual", True)  # one target alone: give the rest of the mix as 'residual'
        return build({target_name(path): state}, settings, str(path), **options)
    raise UmxFormatError(f"{path}: not an Open-Unmix state dict (no fc1/lstm weights)")


def is_umx_file(path: str | Path) -> bool:
    """True for an Open-Unmix folder (``separator.json`` or target ``.pth`` files) or ``.pth`` state dict."""
    path = Path(path)
    if path.is_dir():
        return (path / "separator.json").is_file() or any(path.glob("*.pth"))
    if path.name == "separator.json":
        return True
    if path.suffix not in (".pth", ".chkpnt", ".pt") or not path.is_file():
        return False
    try:
        state = read_state(path)
    except UmxFormatError:
        return False
    return _is_target_state(state) or _is_separator_state(state)


def load_catalogue_entry(entry: dict[str, Any], paths: list[Path]) -> OpenUnmix:
    """Catalogue family loader: one ``.pth`` per target (``files[i].source``) + ``entry["config"]`` settings."""
    states: dict[str, dict[str, torch.Tensor]] = {}
    for spec, path in zip(entry["files"], paths):
        states[spec.get("source") or target_name(path)] = read_state(path)
    order = list(entry.get("config", {}).get("sources") or entry["sources"])
    missing = [s for s in order if s not in states]
    if missing:
        raise UmxFormatError(f"catalogue entry {entry['name']!r}: no weight file for {', '.join(missing)}")
    settings = {k: v for k, v in entry.get("config", {}).items() if k != "sources"}
    settings = {k: tuple(v) if isinstance(v, list) else v for k, v in settings.items()}
    return build({s: states[s] for s in order}, settings, f"published model {entry['name']}")
