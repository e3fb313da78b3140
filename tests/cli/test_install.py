"""Installing as a user would: the core commands work without the optional extras; a command that needs one says
which (issue 17). The extras are hidden from a fresh interpreter by putting ``None`` in ``sys.modules``, which
makes their import fail exactly as when they are not installed."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

EXTRAS_ONLY = ("fastapi", "uvicorn", "multipart", "python_multipart", "matplotlib", "pretty_midi", "mido", "ray")


def _run_without_extras(args: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    script = (
        "import sys\n"
        f"for name in {EXTRAS_ONLY!r}:\n"
        "    sys.modules[name] = None\n"
        "from stemwright.cli.main import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    return subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=timeout)


def test_separate_mix_and_eval_need_no_extra(tmp_path: Path) -> None:
    sf.write(str(tmp_path / "song.wav"), 0.1 * np.random.default_rng(0).standard_normal((44100, 2)), 44100)
    proc = _run_without_extras(["separate", str(tmp_path / "song.wav"), "-o", str(tmp_path / "o"), "-q"])
    assert proc.returncode == 0, proc.stderr
    proc = _run_without_extras(["mix", str(tmp_path / "o" / "song"), "-o", str(tmp_path / "karaoke.wav"),
                                "--preset", "karaoke"])
    assert proc.returncode == 0, proc.stderr


def test_a_missing_extra_is_named(tmp_path: Path) -> None:
    (tmp_path / "stems").mkdir()
    for name in ("vocals", "other"):
        sf.write(str(tmp_path / "stems" / f"{name}.wav"), np.full((4410, 2), 0.1, np.float32), 44100)
    proc = _run_without_extras(["inspect", str(tmp_path / "stems"), "--plots", str(tmp_path / "plots")])
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: stemwright inspect: this command needs the optional package 'matplotlib': "
        "pip install 'stemwright[plot]'")
    proc = _run_without_extras(["serve", "--help"])  # options are shown without the extra ...
    assert proc.returncode == 0, proc.stderr
    proc = _run_without_extras(["serve", "--port", "0"], timeout=60)  # ... and running it names the extra
    assert proc.returncode == 1 and "pip install 'stemwright[studio]'" in proc.stderr, proc.stderr
    proc = _run_without_extras(["synth", "-o", str(tmp_path / "songs"), "-n", "1"])
    assert proc.returncode == 1 and "pip install 'stemwright[synth]'" in proc.stderr, proc.stderr
