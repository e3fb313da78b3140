"""``stemwright --help`` answers before any heavy import (issue 22 item 17: it should stay under 1 s)."""
from __future__ import annotations

import subprocess
import sys


def test_help_imports_neither_numpy_nor_the_cli_framework() -> None:
    code = ("import sys\nfrom stemwright.cli.main import main\nassert main(['--help']) == 0\n"
            "print(sorted(m for m in ('numpy', 'torch', 'av', 'typer', 'click', 'soundfile') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]", out
