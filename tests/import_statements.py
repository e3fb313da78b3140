"""The import statements of a source file, for the tests that check imports (``tests/test_imports.py``: stemwright's
own graph; ``tests/test_dependencies.py``: third-party distributions). Read with ``ast``; nothing is imported."""
from __future__ import annotations

import ast
from pathlib import Path


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
