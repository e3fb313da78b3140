"""The errors stemwright raises for its users: one base class, told apart by type, never by message text.

Every class is a ``ValueError`` (so ``except ValueError`` in older callers still works) whose message names the
file or field and the reason. ``exit_code`` is the command line's exit status for it: 1 for bad input (a file, a
folder, a document, an output that cannot be written), 2 for usage (an option's value or a name typed wrong: fixed
by retyping the command). The CLI maps an error to its status with :func:`exit_code_of`.

This module imports nothing from stemwright, so that every layer can raise these.
"""
from __future__ import annotations

from pathlib import Path

INPUT_EXIT, USAGE_EXIT = 1, 2


class StemwrightError(ValueError):
    """Base of every stemwright error meant for users; ``exit_code`` is the CLI's exit status for it."""

    exit_code = INPUT_EXIT


class UsageError(StemwrightError):
    """An option's value is wrong (retyping the command fixes it)."""

    exit_code = USAGE_EXIT


class UnknownName(UsageError):
    """A name the user typed is not known (a model, an architecture, a device)."""


class ModelNotFound(UnknownName):
    """No registered model, published model or checkpoint has this name."""


class UnknownDevice(UnknownName):
    """The device name is not one stemwright runs on (``auto``, ``cpu``, ``cuda``, ``mps``)."""


class DeviceUnavailable(StemwrightError):
    """The device exists in stemwright but not on this machine (CUDA or MPS missing)."""


class SeparationError(UsageError):
    """Bad input or options for a separation; the message names the field or file and the reason."""


class AudioError(StemwrightError):
    """A file cannot be read or written; the message names the file and the reason."""

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class OutputError(AudioError):
    """An output cannot be written where it was asked for."""


class OutputExists(OutputError):
    """An output file exists and replacing it was not asked for."""


class OtherRunExists(OutputExists):
    """The output folder holds the stems of another separation (another input, model or options)."""


class OutputIsInput(OutputError):
    """An output path is one of the inputs (the same file, a hard link or a symlink): never replaced, even when
    overwriting is asked for."""


class MixError(StemwrightError):
    """A mix, its stems or its options are invalid; the message names the field and the reason."""


class DownloadError(StemwrightError):
    """Model weights could not be downloaded or verified."""


def exit_code_of(error: BaseException) -> int:
    """The CLI's exit status for ``error``: its ``exit_code`` for a :class:`StemwrightError`, else 1."""
    return error.exit_code if isinstance(error, StemwrightError) else INPUT_EXIT
