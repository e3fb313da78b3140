"""docs/ARCHITECTURE.md is a map of the code: every package under src/stemwright has its row."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "stemwright"


def test_every_package_is_named_in_the_map():
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    packages = sorted(p.parent.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("__init__.py")
                      if p.parent != PACKAGE)
    assert packages, "no packages found"
    missing = [p for p in packages if f"`{p}/`" not in text]
    assert not missing, f"docs/ARCHITECTURE.md names no row for {', '.join(missing)}"
    assert "### A song through the studio" in text
