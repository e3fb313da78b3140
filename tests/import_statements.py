"""The import statements of a source file, for the tests that check imports (``tests/test_imports.py``: stemwright's
own graph; ``tests/test_dependencies.py``: third-party distributions). Read with ``ast``; nothing is imported."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "stemwright"


def module_name(path: Path) -> str:
    """``src/stemwright/engine/run.py`` -> ``stemwright.engine.run`` (a package's ``__init__`` is the package)."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_statements(path: Path) -> list[tuple[ast.Import | ast.ImportFrom, bool]]:
    """``(statement, inside a function)`` for every import of the file, except those under ``if TYPE_CHECKING:``,
    which never run."""
    tree = ast.parse(path.read_text(), str(path))
    skipped: set[int] = set()
    in_function: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(n) for n in ast.walk(node))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            in_function.update(id(n) for n in ast.walk(node) if n is not node)
    return [(node, id(node) in in_function) for node in ast.walk(tree)
            if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in skipped]
