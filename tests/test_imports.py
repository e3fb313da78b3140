"""The import graph of ``stemwright``: no cycles, and no hidden function-level imports in the library packages.

A small AST walk over ``src/stemwright`` (no module is imported): every ``import stemwright.x`` /
``from stemwright.x import y`` at any depth is an edge (``y`` counts as ``stemwright.x.y`` when that is a module),
except imports under ``if TYPE_CHECKING:``, which never run.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.import_statements import PACKAGE, import_statements, module_name

#: Packages whose function-level imports are checked (cli/, server/ and api.py keep theirs: they keep
#: ``stemwright --help`` and each command's start fast).
LIBRARY = ("models", "pretrained", "engine", "dsp", "metrics", "datasets", "train", "synth", "mixer", "audio", "analysis",
           "samples", "batch", "drums", "transcribe")



def _modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(path: Path, name: str) -> list[tuple[ast.stmt, list[str], bool]]:
    """``(node, imported module names, inside a function)`` for every import statement of the file."""
    found = []
    for node, in_function in import_statements(path):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import: resolve against this module's package
                base = name.split(".")[: -node.level] if not path.name == "__init__.py" else name.split(".")[: len(name.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets = [f"{module}.{a.name}" for a in node.names] + [module]
        else:
            continue
        found.append((node, targets, in_function))
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the stemwright modules it imports (anywhere in the file)."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges: set[str] = set()
        for node, targets, _ in _imports(path, name):
            if isinstance(node, ast.ImportFrom):
                *members, module = targets
                subs = [m for m in members if m in modules]
                edges.update(subs)
                if len(subs) < len(members) and module in modules:
                    edges.add(module)  # some names are attributes of the module itself
            else:
                edges.update(t for t in targets if t in modules)
        edges.discard(name)
        graph[name] = edges
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return components


def test_no_import_cycle_inside_stemwright():
    cycles = find_cycles(import_graph())
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_architecture_table_is_a_leaf():
    """models/architectures.py imports the model families only (so every loader can import it at the top), and
    the error classes (stemwright.errors, which imports nothing of stemwright)."""
    graph = import_graph()
    assert graph["stemwright.errors"] == set()
    families = {m for m in graph["stemwright.models.architectures"]} - {"stemwright.errors"}
    assert families, "architectures imports no model family"
    for module in families:
        assert module.startswith("stemwright.models."), module
        assert "stemwright.models.architectures" not in _reachable(graph, module), f"{module} imports architectures back"
    assert not families & {"stemwright.models.registry", "stemwright.models.checkpoint", "stemwright.models.onnx"}


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_engine_imports_no_model():
    graph = import_graph()
    for module in (m for m in graph if m.startswith("stemwright.engine")):
        models = sorted(m for m in _reachable(graph, module) if m.startswith("stemwright.models"))
        assert not models, f"{module} imports {models}"


@pytest.mark.parametrize("package", LIBRARY)
def test_library_function_level_imports_are_third_party_and_explained(package):
    """In the library packages a function-level import is only for a third-party module that is optional or slow
    to import, with a comment on its line or the line above saying so; stemwright's own modules go at the top."""
    problems = []
    for name, path in _modules().items():
        if not name.startswith(f"stemwright.{package}"):
            continue
        lines = path.read_text().splitlines()
        for node, targets, in_function in _imports(path, name):
            if not in_function:
                continue
            where = f"{path.relative_to(PACKAGE.parent)}:{node.lineno}"
            if any(t == "stemwright" or t.startswith("stemwright.") for t in targets):
                problems.append(f"{where}: function-level import of a stemwright module")
            elif "#" not in lines[node.lineno - 1] and not lines[node.lineno - 2].strip().startswith("#"):
                problems.append(f"{where}: function-level import without a comment saying why")
    assert not problems, "\n".join(problems)
