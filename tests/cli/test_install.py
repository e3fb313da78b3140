"""Installing as a user would: the core commands work without the optional extras; a command that needs one says
which (issue 17). The extras are hidden from a fresh interpreter by putting ``None`` in ``sys.modules``, which
makes their import fail exactly as when they are not installed. One interpreter runs every command (each a
``main()`` call), so the test pays for one start-up."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

EXTRAS_ONLY = ("fastapi", "uvicorn", "multipart", "python_multipart", "matplotlib", "pretty_midi", "mido", "ray")

SCRIPT = f"""
import contextlib, io, json, sys
for name in {EXTRAS_ONLY!r}:
    sys.modules[name] = None
from stemwright.cli.main import main
results = []
for args in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(args)
    results.append([code, err.getvalue()])
print(json.dumps(results))
"""


def test_core_commands_need_no_extra_and_a_missing_extra_is_named(tmp_path: Path) -> None:
    sf.write(str(tmp_path / "song.wav"), 0.1 * np.random.default_rng(0).standard_normal((44100, 2)), 44100)
    commands = [
        ["separate", str(tmp_path / "song.wav"), "-o", str(tmp_path / "o"), "-q"],  # the default model
        ["mix", str(tmp_path / "o" / "song"), "-o", str(tmp_path / "karaoke.wav"), "--preset", "karaoke"],
        ["inspect", str(tmp_path / "o" / "song"), "--plots", str(tmp_path / "plots")],
        ["serve", "--help"],  # options are shown without the extra ...
        ["serve", "--port", "0"],  # ... and running it names the extra
        ["synth", "-o", str(tmp_path / "songs"), "-n", "1"],
    ]
    proc = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(commands)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    (sep, _), (mix, _), (insp, insp_err), (helped, _), (serve, serve_err), (synth, synth_err) = json.loads(proc.stdout)
    assert sep == 0 and mix == 0 and helped == 0
    assert insp == 1 and insp_err.strip().splitlines()[-1] == (
        "error: stemwright inspect: this command needs the optional package 'matplotlib': "
        "pip install 'stemwright[plot]'")
    assert serve == 1 and "pip install 'stemwright[studio]'" in serve_err, serve_err
    assert synth == 1 and "pip install 'stemwright[synth]'" in synth_err, synth_err
