"""The one atomic-write mechanism every output goes through."""
from __future__ import annotations

import os
import stat

import pytest

from stemwright.atomic import atomic_write, atomic_write_text


def test_writes_with_usual_permissions_and_creates_folders(tmp_path):
    old = os.umask(0o022)
    try:
        p = atomic_write_text(tmp_path / "a" / "b" / "x.json", "{}\n")
    finally:
        os.umask(old)
    assert p.read_text() == "{}\n"
    assert stat.S_IMODE(p.stat().st_mode) == 0o644  # not mkstemp's 0600
    assert atomic_write_text(tmp_path / "y.bin", b"\x00\x01").read_bytes() == b"\x00\x01"


def test_failure_leaves_neither_output_nor_temporary_file(tmp_path):
    target = tmp_path / "out.wav"
    target.write_text("old")

    def broken(tmp):
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(target, broken)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.wav"]


def test_suffix_ends_the_temporary_name(tmp_path):
    seen = []
    atomic_write(tmp_path / "plot.png", lambda tmp: (seen.append(tmp.name), tmp.write_bytes(b"png")), suffix=".part.png")
    assert seen[0].startswith(".plot.png.") and seen[0].endswith(".part.png")


def test_sigterm_while_writing_leaves_no_temporary_file(tmp_path):
    """Issue 17 defect 8: SIGTERM during an mp3 write left a hidden ``.vocals.mp3.*.part.mp3``."""
    import signal
    import subprocess
    import sys
    import time

    script = (
        "import sys, time\n"
        "from stemwright.atomic import atomic_write, remove_temporaries_on_signals\n"
        "remove_temporaries_on_signals()\n"
        "def slow(tmp):\n"
        "    tmp.write_bytes(b'half a file')\n"
        "    print('writing', flush=True)\n"
        "    time.sleep(60)\n"
        f"atomic_write({str(tmp_path / 'vocals.mp3')!r}, slow, suffix='.part.mp3')\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
        assert len(list(tmp_path.iterdir())) == 1  # the temporary file exists now
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == -signal.SIGTERM
    finally:
        proc.kill()
        proc.wait()
    assert list(tmp_path.iterdir()) == []


def test_sigterm_and_sighup_remove_the_folders_a_write_created(tmp_path: Path) -> None:
    """Issue 22 item 9: SIGTERM during 'separate' left an empty track folder behind (SIGINT did not)."""
    import signal
    import subprocess
    import sys

    script = (
        "import sys, time\n"
        "from stemwright.atomic import remove_temporaries_on_signals, temporary_beside\n"
        "remove_temporaries_on_signals()\n"
        "with temporary_beside(sys.argv[1]) as tmp:\n"
        "    print('ready', flush=True)\n"
        "    time.sleep(30)\n"
    )
    for sig in (signal.SIGTERM, signal.SIGHUP):
        target = tmp_path / "out" / f"track{int(sig)}" / "vocals.wav"
        (tmp_path / "out").mkdir(exist_ok=True)
        proc = subprocess.Popen([sys.executable, "-c", script, str(target)], stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        proc.send_signal(sig)
        assert proc.wait(timeout=20) == -sig
        assert not target.parent.exists()
        assert (tmp_path / "out").is_dir()  # it existed before: kept
