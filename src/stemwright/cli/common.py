"""What every sub-command shares: one way to fail and warn, the exit-status rule, choices built from the
library's own constants, and the one progress library (tqdm).

Exit status: 0 done; 1 bad input (a file, a folder, a document: the line names it); 2 usage (an option's value,
an unknown model or device name: things fixed by retyping the command). Library errors are told apart by type
(:mod:`stemwright.errors`), never by their text.
Terminal output: results on stdout; ``error: ...`` and ``warning: ...`` lines on stderr, one per problem.
"""
from __future__ import annotations

import sys
from enum import Enum
from typing import Any, Iterable, NoReturn

import typer

from stemwright.errors import INPUT_EXIT, USAGE_EXIT, exit_code_of
EXTRAS = {"studio": "serve", "synth": "synth", "train": "train"}


def fail(message: str, code: int = INPUT_EXIT) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code`` (1 bad input, 2 usage)."""
    print(f"error: {message}", file=sys.stderr)
    raise typer.Exit(code)


def warn(message: str) -> None:
    """Print ``warning: message`` on stderr."""
    print(f"warning: {message}", file=sys.stderr)


def choices(name: str, values: Iterable[str]) -> type[Enum]:
    """A ``str`` Enum for typer from a library constant (e.g. ``WRITE_FORMATS``), so the CLI offers exactly what
    the library accepts."""
    return Enum(name, {v: v for v in values}, type=str)  # type: ignore[return-value]


def fail_from(error: Exception) -> NoReturn:
    """:func:`fail` with the library error's message and its type's exit status
    (:attr:`stemwright.errors.StemwrightError.exit_code`: 2 for a name or option typed wrong, else 1)."""
    fail(str(error), exit_code_of(error))


def name_list(text: str | None) -> list[str] | None:
    """A comma-separated option (``--stems vocals,drums``) as a list; ``None`` when not given or empty."""
    names = [s.strip() for s in text.split(",") if s.strip()] if text else []
    return names or None


def need_extra(module: str, extra: str, what: str) -> Any:
    """Import ``module`` or fail naming the extra that provides it: ``pip install 'stemwright[EXTRA]'``."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        fail(f"{what} needs the optional package {e.name or module!r}: pip install 'stemwright[{extra}]'")


def stderr_is_terminal() -> bool:
    """Whether progress may redraw itself in place (``\r``) on stderr."""
    return sys.stderr.isatty()


def progress_bar(total: float, description: str, *, enabled: bool = True, position: int | None = None,
                 unit: str = "it") -> Any:
    """A tqdm bar on stderr (the project's one progress library); disabled bars cost nothing. Only on a terminal:
    in a log file or a pipe a bar is one line of carriage returns (commands print plain lines there instead)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=description, disable=not (enabled and stderr_is_terminal()), file=sys.stderr, dynamic_ncols=True,
                position=position, unit=unit, leave=True,
                bar_format="{desc} {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}]")
