"""One error hierarchy (issue 22, item 15): every user error is a ``stemwright.StemwrightError`` whose type, not
its text, gives the CLI's exit status."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import stemwright
from stemwright import errors


def test_the_base_class_and_its_subclasses_are_exported_at_the_top_level() -> None:
    assert stemwright.StemwrightError is errors.StemwrightError
    for name in ("AudioError", "ModelNotFound", "OutputExists", "SeparationError", "MixError", "DownloadError"):
        assert issubclass(getattr(stemwright, name), stemwright.StemwrightError)
    # the old import paths name the same classes
    from stemwright.api import SeparationError
    from stemwright.audio.io import AudioError
    from stemwright.mixer.effects import MixError
    from stemwright.pretrained.download import DownloadError

    assert (SeparationError, AudioError, MixError, DownloadError) == (
        errors.SeparationError, errors.AudioError, errors.MixError, errors.DownloadError)


def test_unknown_names_are_typed() -> None:
    with pytest.raises(errors.UnknownDevice):
        stemwright.Separator("classic", device="tpu")
    with pytest.raises(errors.ModelNotFound):
        stemwright.Separator("no_such_model_anywhere", offline=True)
    assert errors.exit_code_of(errors.ModelNotFound("x")) == 2
    assert errors.exit_code_of(errors.AudioError("f.wav", "not found")) == 1
    assert errors.exit_code_of(RuntimeError("x")) == 1


def test_the_cli_maps_types_not_text(capsys: pytest.CaptureFixture) -> None:
    """A usage error whose text does not start with 'unknown' still exits 2; a bad-input error that does, 1."""
    from stemwright.cli.common import fail_from

    for error, code in ((errors.UnknownDevice("device 'tpu' is not one stemwright knows"), 2),
                        (errors.AudioError("unknown model.wav", "file not found"), 1)):
        with pytest.raises(Exception) as info:
            fail_from(error)
        assert getattr(info.value, "exit_code", None) == code
    capsys.readouterr()


def test_separate_file_refuses_overwrite_with_skip_existing(tmp_path: Path) -> None:
    sep = stemwright.Separator("classic", device="cpu")
    with pytest.raises(errors.SeparationError, match="not both"):
        sep.separate_file(tmp_path / "missing.wav", tmp_path / "out", overwrite=True, skip_existing=True)
    assert not (tmp_path / "out").exists()


def test_bfloat16_tensors_are_separated() -> None:
    sep = stemwright.Separator("classic", device="cpu")
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((2, 22050)).astype(np.float32) * 0.1)
    stems = sep.separate(x.to(torch.bfloat16), 44100)
    assert set(stems) == set(sep.sources) and all(s.dtype == np.float32 and s.shape == (2, 22050)
                                                  for s in stems.values())
    reference = sep.separate(x.to(torch.bfloat16).float(), 44100)
    assert all(np.allclose(stems[k], reference[k]) for k in stems)


# Exceptions that never reach a user as an error of theirs: control flow inside the studio's job queue, and the
# studio's HTTP answer (an ApiError carries a status code, and is built from the typed errors below it).
INTERNAL_EXCEPTIONS = {
    "stemwright.server.jobs.JobCancelled",  # raised in a progress callback to stop a cancelled job
    "stemwright.server.jobs.QueueFullError",  # answered as HTTP 503 by the router
    "stemwright.server.exports.ExportBusyError",  # answered as HTTP 503 by the router
    "stemwright.server.studio.ApiError",  # the HTTP answer itself
    "stemwright.live.LiveError",  # the JACK client's own errors (live.py), mapped to exit codes by cli/live.py
    "stemwright.live.LiveUsageError",
}


def _stemwright_exception_classes() -> dict[str, type]:
    """Every exception class defined in a stemwright module, by qualified name (modules whose optional
    dependencies are missing are skipped: the dependency test checks those imports)."""
    import importlib
    import inspect
    import pkgutil

    found: dict[str, type] = {}
    for info in pkgutil.walk_packages(stemwright.__path__, "stemwright."):
        try:
            module = importlib.import_module(info.name)
        except ImportError:
            continue
        for name, obj in vars(module).items():
            if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == info.name:
                found[f"{info.name}.{name}"] = obj
    return found


def test_every_error_a_user_can_meet_is_a_stemwright_error() -> None:
    """One base: an error class defined anywhere in the package derives from StemwrightError (so the CLI and
    callers tell errors apart by type and read the exit status from it), unless it is listed as internal."""
    classes = _stemwright_exception_classes()
    assert "stemwright.models.checkpoint.CheckpointError" in classes  # the walk sees the package
    stray = sorted(name for name, cls in classes.items()
                   if not issubclass(cls, errors.StemwrightError) and name not in INTERNAL_EXCEPTIONS)
    assert not stray, f"not under StemwrightError: {stray}"
    assert not INTERNAL_EXCEPTIONS - set(classes), "an internal exception listed here no longer exists"
