"""Entry point of the ``stemwright`` command.

Each sub-command lives in its own module exposing ``command`` (a typer-annotated function); only the module of
the command being run is imported, so ``stemwright models`` does not pay for the web server's imports.
"""
from __future__ import annotations

import importlib
import logging
import sys
import warnings

from stemwright import __version__

COMMANDS: dict[str, tuple[str, str]] = {
    "separate": ("stemwright.cli.separate", "Split songs into stems."),
    "batch": ("stemwright.cli.batch", "Separate a catalogue on Ray (local or cluster), resumable, with a report."),
    "models": ("stemwright.cli.models", "List the available models."),
    "eval": ("stemwright.cli.eval", "Score a separator on a dataset (BSS Eval v4 / MDX SDR)."),
    "bench": ("stemwright.cli.bench", "Time a model: seconds, real-time factor, peak memory."),
    "synth": ("stemwright.cli.synth", "Generate synthetic multitrack songs for training."),
    "train": ("stemwright.cli.train", "Train a separation model from a YAML config."),
    "export": ("stemwright.cli.export", "Write separated stems as audio for other software (NI Stems .stem.mp4 for DJs)."),
    "export-onnx": ("stemwright.cli.export_onnx", "Export a model (not audio) to ONNX."),
    "mix": ("stemwright.cli.mix", "Remix separated stems (gains, pan, effects, presets, loudness)."),
    "mashup": ("stemwright.cli.mashup", "Put the vocals of one song over the backing of another."),
    "analyze": ("stemwright.cli.analyze", "Tempo, beats, downbeats, time signature, key and chords of a song, from its stems."),
    "transcribe": ("stemwright.cli.transcribe", "Stems to MIDI (basic-pitch): one MIDI file per stem at the song's tempo."),
    "drums": ("stemwright.cli.drums", "Replace or reinforce the drums with your samples (hits, MIDI, blend)."),
    "samples": ("stemwright.cli.samples", "Cut a sample library (bar loops, drum one-shots, index) from stems."),
    "inspect": ("stemwright.cli.inspect", "Diagnose separated stems: bleed, mono compatibility, clipping, plots."),
    "live": ("stemwright.cli.live", "Separate live input through JACK at a fixed delay (one stereo output per stem)."),
    "serve": ("stemwright.cli.serve", "Start stemwright studio, the local web app with a live stem mixer."),
}


# Import name of an optional package -> the extra that installs it (pyproject.toml [project.optional-dependencies]).
OPTIONAL_PACKAGES = {
    "fastapi": "studio", "uvicorn": "studio", "multipart": "studio", "python_multipart": "studio",
    "pretty_midi": "synth", "mido": "synth", "matplotlib": "plot", "ray": "ray", "onnx": "onnx",
    "onnxruntime": "onnx", "jack": "live",
}
VERBOSE_FLAGS = ("-v", "--verbose")
HELP_FLAGS = ["-h", "--help"]


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"stemwright {__version__} — music stem separation", "",
             "usage: stemwright [-v] COMMAND [OPTIONS] ...", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "Run 'stemwright COMMAND -h' for a command's options; -v shows library logs and third-party warnings."]
    return "\n".join(lines)


class _LowerLevel(logging.Formatter):
    """``warning: ...`` / ``error: ...``: the same prefixes the commands print."""

    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {record.getMessage()}"


def _setup_output(verbose: bool) -> None:
    """One style on stderr: ``warning:``/``error:`` lines. Our warnings always show; third-party ones (numpy,
    librosa, torch, ...) and info logs only with ``-v``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LowerLevel())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    if not verbose:
        logging.getLogger("stemwright").setLevel(logging.WARNING)
        for noisy in ("numba", "matplotlib", "PIL", "httpx", "urllib3", "ray"):  # ray: "Token authentication..."
            logging.getLogger(noisy).setLevel(logging.ERROR)
    from stemwright.audio.io import set_native_decoder_messages

    set_native_decoder_messages(verbose)  # libmpg123's "Note: Illegal Audio-MPEG-Header ..." lines
    warnings.formatwarning = lambda message, category, *args, **kwargs: f"warning: {message}\n"
    if not verbose:
        warnings.filterwarnings("ignore")
        warnings.filterwarnings("default", category=UserWarning, module=r"stemwright(\.|$)")


def _missing_extra(error: ImportError) -> str | None:
    name = (error.name or "").split(".")[0]
    extra = OPTIONAL_PACKAGES.get(name)
    return f"this command needs the optional package {name!r}: pip install 'stemwright[{extra}]'" if extra else None


def _interrupted(name: str, args: list[str]) -> None:
    if name != "separate":
        print("error: interrupted", file=sys.stderr)
    elif "--overwrite" in args:
        # --skip-existing would refuse the tracks this run had not reached yet: they hold the earlier run's stems
        print("error: interrupted (finished tracks are kept; rerun the same command to separate them all again)",
              file=sys.stderr)
    else:
        print("error: interrupted (finished tracks are kept; rerun with --skip-existing to do the rest)",
              file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    verbose = False
    while args and args[0] in VERBOSE_FLAGS:
        verbose, args = True, args[1:]
    if args and args[0] in COMMANDS and args[0] != "train" and any(a in VERBOSE_FLAGS for a in args[1:]):
        verbose, args = True, [args[0]] + [a for a in args[1:] if a not in VERBOSE_FLAGS]
    elif args and args[0] == "train":
        verbose = verbose or any(a in VERBOSE_FLAGS for a in args[1:])
    # help, version and usage errors are answered before any output setup or import (--help stays fast)
    if not args:  # a bare command is a usage error, as in git, pip and demucs
        print(_usage(), file=sys.stderr)
        return 2
    if args[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if args[0] in ("-V", "--version"):
        print(__version__)
        return 0
    name = args[0]
    if name not in COMMANDS:
        print(f"error: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    _setup_output(verbose)
    return _run(name, args)


def _run(name: str, args: list[str]) -> int:
    """Run sub-command ``name`` with ``args`` (``args[0]`` is the name); returns the exit status."""
    # imported here, not at the top: 'stemwright --help' needs neither (about 0.2 s)
    import click
    import typer

    try:  # typer >= 0.20 vendors its own copy of click
        from typer._click import exceptions as tclick
    except ImportError:  # pragma: no cover - older typer uses click itself
        tclick = click.exceptions
    usage_errors = (click.UsageError, tclick.UsageError)
    exits = (click.exceptions.Exit, typer.Exit)
    aborts = (click.Abort, typer.Abort)
    from stemwright.atomic import remove_temporaries_on_signals

    remove_temporaries_on_signals()
    module_name, help_ = COMMANDS[name]
    try:
        module = importlib.import_module(module_name)
        app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, help=help_,
                          context_settings={"help_option_names": HELP_FLAGS})
        app.command(name=name, help=module.command.__doc__ or help_)(module.command)
        result = app(args[1:], prog_name=f"stemwright {name}", standalone_mode=False)
    except usage_errors as e:
        # One plain line (no boxed rich panel), naming the command; exit status 2 as for any usage error.
        print(f"error: {e.format_message()} (see 'stemwright {name} -h')", file=sys.stderr)
        return 2
    except exits as e:
        return int(getattr(e, "exit_code", getattr(e, "code", 1)) or 0)
    except (*aborts, KeyboardInterrupt):  # click turns Ctrl-C into Abort
        _interrupted(name, args)
        return 130
    except ImportError as e:
        message = _missing_extra(e)
        if message is None:
            raise
        print(f"error: stemwright {name}: {message}", file=sys.stderr)
        return 1
    except SystemExit as e:
        code = e.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    if result == 130:  # typer turns Ctrl-C into a return value of 130, in non-standalone mode
        _interrupted(name, args)
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
