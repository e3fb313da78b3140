"""Entry point of the ``stemwright`` command.

Each sub-command lives in its own module exposing ``command`` (a typer-annotated function); only the module of
the command being run is imported, so ``stemwright models`` does not pay for the web server's imports.
"""
from __future__ import annotations

import importlib
import logging
import sys

import click
import typer

try:  # typer >= 0.20 vendors its own copy of click
    from typer._click import exceptions as _tclick
except ImportError:  # pragma: no cover - older typer uses click itself
    _tclick = click.exceptions

_USAGE_ERRORS = (click.UsageError, _tclick.UsageError)
_EXITS = (click.exceptions.Exit, typer.Exit)
_ABORTS = (click.Abort, typer.Abort)

from stemwright import __version__

COMMANDS: dict[str, tuple[str, str]] = {
    "separate": ("stemwright.cli.separate", "Split songs into stems."),
    "models": ("stemwright.cli.models", "List the available models."),
    "eval": ("stemwright.cli.eval", "Score a separator on a dataset (BSS Eval v4 / MDX SDR)."),
    "bench": ("stemwright.cli.bench", "Time a model: seconds, real-time factor, peak memory."),
    "synth": ("stemwright.cli.synth", "Generate synthetic multitrack songs for training."),
    "train": ("stemwright.cli.train", "Train a separation model from a YAML config."),
    "export-onnx": ("stemwright.cli.export_onnx", "Export a model to ONNX."),
    "mix": ("stemwright.cli.mix", "Remix separated stems (gains, pan, effects, presets, loudness)."),
    "mashup": ("stemwright.cli.mashup", "Put the vocals of one song over the backing of another."),
    "inspect": ("stemwright.cli.inspect", "Diagnose separated stems: bleed, mono compatibility, clipping, plots."),
    "serve": ("stemwright.cli.serve", "Start stemwright studio, the local web app with a live stem mixer."),
}


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"stemwright {__version__} — music stem separation", "", "usage: stemwright COMMAND [OPTIONS] ...", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "Run 'stemwright COMMAND --help' for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    if not args or args[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if args[0] in ("-V", "--version"):
        print(__version__)
        return 0
    name = args[0]
    if name not in COMMANDS:
        print(f"stemwright: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module_name, help_ = COMMANDS[name]
    module = importlib.import_module(module_name)
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, help=help_)
    app.command(name=name, help=module.command.__doc__ or help_)(module.command)
    try:
        result = app(args[1:], prog_name=f"stemwright {name}", standalone_mode=False)
    except _USAGE_ERRORS as e:
        # One plain line (no boxed rich panel), naming the command; exit status 2 as for any usage error.
        hint = f" (see 'stemwright {name} --help')"
        print(f"stemwright {name}: error: {e.format_message()}{hint}", file=sys.stderr)
        return 2
    except _EXITS as e:
        return int(getattr(e, "exit_code", getattr(e, "code", 1)) or 0)
    except _ABORTS:
        print("aborted", file=sys.stderr)
        return 130
    except SystemExit as e:
        code = e.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
