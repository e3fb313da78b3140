"""Loader for the BS-RoFormer / Mel-Band RoFormer checkpoints of the community training repositories.

Layout (ZFTurbo's Music-Source-Separation-Training and the repositories that publish its models):

- ``NAME.ckpt`` (or ``.pth``/``.pt``): a torch state dict (optionally wrapped in ``{"state_dict": ...}`` /
  ``{"state": ...}``, keys optionally prefixed ``module.`` or ``model.``). Loaded with
  ``torch.load(..., weights_only=True)``: tensors and plain containers only, never a pickled class.
- A YAML config with the sections ``audio:`` (``sample_rate``, ``chunk_size``, ``num_channels``), ``model:``
  (the reference constructor's keyword arguments: ``dim``, ``depth``, ``stereo``, ``num_stems``,
  ``freqs_per_bands`` or ``num_bands``, ...), ``training:`` (``instruments``, ``target_instrument``) and
  ``inference:`` (``num_overlap``, ``batch_size``). The YAML often holds ``!!python/tuple`` tags; they are read as
  tuples by a *safe* loader (no other Python tags are accepted).

The YAML is found, in order: the ``config`` argument (path or already-parsed dict), ``NAME.yaml``/``NAME.yml``,
``config_NAME.yaml``, or the only YAML file in the checkpoint's folder.

Mapping to stemwright: ``bs_roformer`` when the model section has ``freqs_per_bands``, ``mel_roformer`` when it has
``num_bands``; sources are ``[target_instrument]`` when one is set (the model then outputs that stem only; the rest
of the mix is the residual), else ``instruments``; ``segment = chunk_size / sample_rate`` seconds; the overlap that
the community inference script uses (``num_overlap`` chunks over each sample, i.e. ``1 - 1/num_overlap``) is kept on
the model as ``default_overlap``; :class:`stemwright.Separator` (and ``stemwright separate``) run the model with it
unless an overlap is given.
"""
from __future__ import annotations

import logging
import pickle
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from stemwright.errors import StemwrightError
from stemwright.models.roformer import (
    DEFAULT_FREQS_PER_BANDS,
    BSRoformer,
    BSRoformerConfig,
    MelRoformer,
    MelRoformerConfig,
    _RoformerBase,
)

log = logging.getLogger(__name__)

CHECKPOINT_SUFFIXES = (".ckpt", ".pth", ".pt")
YAML_SUFFIXES = (".yaml", ".yml")

# model-section key -> stemwright config field (same meaning, maybe another name)
_RENAMED = {
    "dim": "dim", "depth": "depth", "time_transformer_depth": "time_transformer_depth",
    "freq_transformer_depth": "freq_transformer_depth", "dim_head": "dim_head", "heads": "heads",
    "attn_dropout": "attn_dropout", "ff_dropout": "ff_dropout", "mask_estimator_depth": "mask_estimator_depth",
    "mlp_expansion_factor": "mlp_expansion_factor", "stft_n_fft": "n_fft", "stft_hop_length": "hop_length",
    "stft_win_length": "win_length", "stft_normalized": "stft_normalized", "freqs_per_bands": "freqs_per_bands",
    "num_bands": "num_bands",
}
# Keys with no effect on inference output: attention kernel choice, training memory, loss settings, bookkeeping.
_IGNORED = {
    "flash_attn", "sage_attention", "use_torch_checkpoint", "dim_freqs_in", "match_input_audio_length",
    "multi_stft_resolution_loss_weight", "multi_stft_resolutions_window_sizes", "multi_stft_hop_size",
    "multi_stft_normalized", "sample_rate", "stereo", "num_stems",
}
# Options of forks that change the network and that stemwright does not implement: (key, value that is harmless).
_UNSUPPORTED = {"linear_transformer_depth": 0, "skip_connection": False, "zero_dc": False, "freq_range": None,
                "num_residual_streams": 1, "use_pope": False}

# Constructor defaults of the reference classes (bs-roformer 0.3.x, as forked by the training repositories).
_COMMON_DEFAULTS = dict(n_fft=2048, hop_length=512, win_length=2048, time_transformer_depth=2,
                        freq_transformer_depth=2, dim_head=64, heads=8, mlp_expansion_factor=4)
_REFERENCE_DEFAULTS: dict[str, dict[str, Any]] = {
    "BSRoformer": {**_COMMON_DEFAULTS, "mask_estimator_depth": 2, "attn_dropout": 0.0, "ff_dropout": 0.0,
                   "freqs_per_bands": DEFAULT_FREQS_PER_BANDS},
    "MelRoformer": {**_COMMON_DEFAULTS, "mask_estimator_depth": 1, "attn_dropout": 0.1, "ff_dropout": 0.1,
                    "num_bands": 60},
}


class RoformerFormatError(StemwrightError):
    """A RoFormer checkpoint or its YAML config is missing, malformed, or uses an unsupported option."""


class _TupleSafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that also reads ``!!python/tuple`` (what ``yaml.dump`` writes for tuples) as a tuple."""


_TupleSafeLoader.add_constructor(
    "tag:yaml.org,2002:python/tuple", lambda loader, node: tuple(loader.construct_sequence(node, deep=True))
)


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Parse a community YAML config safely. Raises :class:`RoformerFormatError` naming the file."""
    path = Path(path)
    try:
        doc = yaml.load(path.read_text(), Loader=_TupleSafeLoader)  # noqa: S506 - a SafeLoader subclass
    except (OSError, yaml.YAMLError) as e:
        raise RoformerFormatError(f"{path}: cannot read YAML config ({e})") from None
    if not isinstance(doc, dict):
        raise RoformerFormatError(f"{path}: YAML config must be a mapping with 'audio', 'model', 'training' sections")
    return doc


def _looks_roformer(doc: Any) -> bool:
    model = doc.get("model") if isinstance(doc, dict) else None
    return (isinstance(model, dict) and "dim" in model and "depth" in model
            and ("freqs_per_bands" in model or "num_bands" in model))


def find_config(checkpoint: Path) -> Path | None:
    """The YAML config beside ``checkpoint`` (see module docstring for the order), or ``None``."""
    folder, stem = checkpoint.parent, checkpoint.stem
    for candidate in (folder / f"{stem}.yaml", folder / f"{stem}.yml", folder / f"config_{stem}.yaml"):
        if candidate.is_file():
            return candidate
    yamls = [p for p in folder.glob("*") if p.suffix in YAML_SUFFIXES and p.is_file()] if folder.is_dir() else []
    return yamls[0] if len(yamls) == 1 else None


def _find_checkpoint(config_path: Path) -> Path | None:
    for suffix in CHECKPOINT_SUFFIXES:
        candidate = config_path.with_suffix(suffix)
        if candidate.is_file():
            return candidate
    return None


# Keys every BS-/Mel-RoFormer state dict has (band 0's input norm and first mask-estimator layer).
_SIGNATURE_KEYS = ("band_split.to_features.0.0.gamma", "mask_estimators.0.to_freqs.0.0.0.weight")


def _has_roformer_keys(path: Path) -> bool:
    """Peek at a checkpoint's key names (memory-mapped: the tensors are not read)."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # any unreadable/unsafe file is simply "not ours"
        return False
    for key in ("state_dict", "state", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict):
        return False
    keys = [k.removeprefix("module.").removeprefix("model.") for k in obj if isinstance(k, str)]
    return all(sig in keys for sig in _SIGNATURE_KEYS)


def is_roformer_file(path: str | Path) -> bool:
    """True when ``path`` is a RoFormer checkpoint: a ``.ckpt``/``.pth``/``.pt`` with a community YAML config
    beside it, or whose state-dict keys are a RoFormer's (then loading explains that the YAML is needed), or such
    a YAML with its checkpoint beside it. Never raises."""
    path = Path(path)
    try:
        if not path.is_file():
            return False
        if path.suffix in YAML_SUFFIXES:
            return _find_checkpoint(path) is not None and _looks_roformer(read_yaml(path))
        if path.suffix not in CHECKPOINT_SUFFIXES:
            return False
        config = find_config(path)
        if config is not None and _looks_roformer(read_yaml(config)):
            return True
        return _has_roformer_keys(path)
    except (RoformerFormatError, OSError):
        return False


def _section(doc: dict[str, Any], name: str, where: str) -> dict[str, Any]:
    value = doc.get(name) or {}
    if not isinstance(value, dict):
        raise RoformerFormatError(f"{where}: section '{name}' must be a mapping")
    return value


def _sources(doc: dict[str, Any], num_stems: int, where: str) -> tuple[str, ...]:
    training = _section(doc, "training", where)
    target = training.get("target_instrument")
    instruments = list(training.get("instruments") or [])
    if target:
        if num_stems != 1:
            raise RoformerFormatError(f"{where}: training.target_instrument={target!r} needs model.num_stems: 1, "
                                      f"got {num_stems}")
        return (str(target),)
    if len(instruments) != num_stems:
        raise RoformerFormatError(
            f"{where}: model.num_stems={num_stems} but training.instruments has {len(instruments)} names "
            f"({instruments}); set training.target_instrument for a single-stem model"
        )
    return tuple(str(s) for s in instruments)


def config_from_yaml(doc: dict[str, Any], *, where: str = "config", architecture: str | None = None
                     ) -> tuple[type[_RoformerBase], BSRoformerConfig | MelRoformerConfig, dict[str, Any]]:
    """Map a community YAML (parsed) to ``(model class, stemwright config, extras)``.

    ``extras`` holds ``default_overlap`` and ``batch_size`` from the ``inference`` section when present.
    """
    model = _section(doc, "model", where)
    audio = _section(doc, "audio", where)
    inference = _section(doc, "inference", where)
    if architecture is None:
        if ("freqs_per_bands" in model) == ("num_bands" in model):
            raise RoformerFormatError(f"{where}: model section needs exactly one of 'freqs_per_bands' (BS-RoFormer) "
                                      "or 'num_bands' (Mel-Band RoFormer)")
        architecture = "bs_roformer" if "freqs_per_bands" in model else "mel_roformer"
    cls = {"bs_roformer": BSRoformer, "mel_roformer": MelRoformer}.get(architecture)
    if cls is None:
        raise RoformerFormatError(f"{where}: unknown RoFormer architecture {architecture!r}")
    for key, harmless in _UNSUPPORTED.items():
        if key in model and model[key] != harmless and model[key] is not None:
            raise RoformerFormatError(f"{where}: model.{key}={model[key]!r} is a fork option stemwright does not "
                                      f"implement (only {harmless!r} is supported)")
    unknown = sorted(set(model) - set(_RENAMED) - _IGNORED - set(_UNSUPPORTED))
    if unknown:
        raise RoformerFormatError(f"{where}: unsupported model option(s) {', '.join(unknown)}")

    missing = [k for k in ("dim", "depth") if k not in model]
    if missing:
        raise RoformerFormatError(f"{where}: model section lacks required key(s) {', '.join(missing)}")
    fields = {_RENAMED[k]: v for k, v in model.items() if k in _RENAMED}
    if "freqs_per_bands" in fields:
        fields["freqs_per_bands"] = tuple(int(f) for f in fields["freqs_per_bands"])
    stereo = bool(model.get("stereo", False))
    samplerate = int(audio.get("sample_rate", model.get("sample_rate", 44100)))
    if "sample_rate" in model and cls is MelRoformer and int(model["sample_rate"]) != samplerate:
        raise RoformerFormatError(f"{where}: model.sample_rate={model['sample_rate']} differs from "
                                  f"audio.sample_rate={samplerate}")
    if "num_channels" in audio and int(audio["num_channels"]) != (2 if stereo else 1):
        raise RoformerFormatError(f"{where}: audio.num_channels={audio['num_channels']} but model.stereo={stereo}")
    chunk = audio.get("chunk_size")
    fields.update(
        sources=_sources(doc, int(model.get("num_stems", 1)), where),
        samplerate=samplerate,
        audio_channels=2 if stereo else 1,
        segment=float(chunk) / samplerate if chunk else None,
    )
    # The reference constructors' defaults where the YAML omits a key (they differ between the two variants).
    for key, default in _REFERENCE_DEFAULTS[cls.__name__].items():
        fields.setdefault(key, default)
    try:
        config = cls.config_class(**fields)
    except (TypeError, ValueError) as e:
        raise RoformerFormatError(f"{where}: {e}") from None
    extras: dict[str, Any] = {}
    if inference.get("num_overlap"):
        extras["default_overlap"] = 1.0 - 1.0 / float(inference["num_overlap"])
    if inference.get("batch_size"):
        extras["batch_size"] = int(inference["batch_size"])
    if inference.get("normalize"):
        log.warning("%s: inference.normalize is set; stemwright does not apply the training repository's whole-track "
                    "mean/std normalisation, so results can differ slightly from its inference script", where)
    return cls, config, extras


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Load a checkpoint's state dict without unpickling classes; unwrap common containers and key prefixes."""
    path = Path(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise RoformerFormatError(f"{path}: not a plain torch state dict (refused to unpickle: {reason})") from None
    for key in ("state_dict", "state", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise RoformerFormatError(f"{path}: expected a dict of tensors (a state dict)")
    for prefix in ("module.", "model."):
        if all(k.startswith(prefix) for k in obj):
            obj = {k[len(prefix):]: v for k, v in obj.items()}
    return obj


def _load_weights(model: _RoformerBase, state: dict[str, torch.Tensor], path: Path) -> None:
    expected = model.state_dict()
    # Rotary frequencies are fixed (not learned); some savers leave them out: take ours then.
    state = {**{k: v for k, v in expected.items() if k.endswith("rotary_embed.freqs")}, **state}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise RoformerFormatError(
            f"{path}: weights do not fit the YAML's {type(model).__name__} config: "
            f"{len(missing)} missing (e.g. {missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]})"
        )
    for key, value in state.items():
        if value.shape != expected[key].shape:
            raise RoformerFormatError(f"{path}: {key} has shape {tuple(value.shape)}, the YAML's config needs "
                                      f"{tuple(expected[key].shape)}")
    model.load_state_dict(state, strict=True)


def load_roformer(path: str | Path, config: str | Path | dict[str, Any] | None = None, *,
                  architecture: str | None = None) -> nn.Module:
    """Build the stemwright model of a community RoFormer checkpoint, in eval mode.

    ``path``: the ``.ckpt``/``.pth``/``.pt`` file (or its YAML, with the checkpoint beside it). ``config``: the
    YAML path or parsed dict (default: found beside the checkpoint). ``architecture``: ``"bs_roformer"`` or
    ``"mel_roformer"`` when the YAML does not tell (default: from its keys).
    """
    path = Path(path)
    if path.suffix in YAML_SUFFIXES:
        config = path if config is None else config
        found = _find_checkpoint(path)
        if found is None:
            raise RoformerFormatError(f"{path}: no checkpoint ({', '.join(CHECKPOINT_SUFFIXES)}) with the same name")
        path = found
    if not path.is_file():
        raise RoformerFormatError(f"{path}: checkpoint not found")
    if config is None:
        config = find_config(path)
        if config is None:
            raise RoformerFormatError(
                f"{path}: no YAML config found (looked for {path.stem}.yaml, config_{path.stem}.yaml, or a single "
                "YAML file in its folder); put the training config beside the checkpoint"
            )
    where = str(config) if not isinstance(config, dict) else f"{path} (config)"
    doc = config if isinstance(config, dict) else read_yaml(config)
    cls, model_config, extras = config_from_yaml(doc, where=where, architecture=architecture)
    model = cls(model_config)
    _load_weights(model, read_state_dict(path), path)
    model.default_overlap = extras.get("default_overlap")
    model.checkpoint_info = {"format": "roformer-ckpt+yaml", "path": str(path), "config": where, **extras}
    log.info("loaded %s (%s, sources %s) from %s", cls.__name__, where, ", ".join(model.sources), path)
    return model.eval()


def load_catalogue_entry(entry: dict[str, Any], paths: list[Path]) -> nn.Module:
    """Family loader for the catalogue: the checkpoint among ``paths``; the config from the entry's ``config``
    (the published YAML's content) or a YAML file among ``paths``."""
    checkpoints = [p for p in paths if Path(p).suffix in CHECKPOINT_SUFFIXES]
    yamls = [p for p in paths if Path(p).suffix in YAML_SUFFIXES]
    if len(checkpoints) != 1:
        raise RoformerFormatError(f"catalogue entry {entry.get('name')!r}: expected one checkpoint file, got {paths}")
    config: Any = entry.get("config") or (yamls[0] if yamls else None)
    if config is None:
        raise RoformerFormatError(f"catalogue entry {entry.get('name')!r}: no config "
                                  "(neither 'config' nor a YAML file)")
    return load_roformer(checkpoints[0], config, architecture=entry.get("architecture"))
