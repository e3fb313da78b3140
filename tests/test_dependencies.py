"""Every third-party distribution that ``stemwright`` imports is declared in ``pyproject.toml`` (issue 21).

An AST walk over ``src/stemwright`` (nothing of it is imported): each import's top-level name is mapped to the
distribution that installs it (``importlib.metadata.packages_distributions()``, so this runs in the ``[dev]``
environment, where every extra is installed), then checked against the part of the project it belongs to:

- a module of an extra's part (``EXTRA_PARTS``: the studio server, the synthesizer, training, Ray batch, ONNX export)
  may import the core dependencies and its extra's (an extra that names ``stemwright[a,b]`` includes those);
- every other module is core: everything reachable from ``stemwright separate``/``mix``/``eval``/``models``/
  ``inspect`` must work after ``pip install stemwright``, so its imports at module level are core dependencies;
  an import inside a function may be of an extra only when ``stemwright.cli.main.OPTIONAL_PACKAGES`` names that
  extra (so that a user without it is told what to install), and the extra declares it.

Imports under ``if TYPE_CHECKING:`` never run and are passed over, like the standard library and ``stemwright``.
"""
from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from stemwright.cli.main import OPTIONAL_PACKAGES
from tests.import_statements import PACKAGE, import_statements, module_name

ROOT = Path(__file__).resolve().parents[1]

#: Module (or package) of stemwright -> the extra that installs what it imports. Longest prefix wins.
EXTRA_PARTS = {
    "stemwright.server": "studio",
    "stemwright.cli.serve": "studio",
    "stemwright.synth": "synth",
    "stemwright.cli.synth": "synth",
    "stemwright.train": "train",
    "stemwright.cli.train": "train",
    "stemwright.batch": "ray",
    "stemwright.cli.batch": "ray",
    "stemwright.cli.export_onnx": "onnx",
    "stemwright.live": "live",
    "stemwright.live_check": "live",
    "stemwright.transcribe": "transcribe",
    "stemwright.cli.transcribe": "transcribe",
}
#: Extra -> the requirements file of what that part needs but cannot declare (installed with --no-deps by
#: scripts/setup.sh --dev: basic-pitch requires TensorFlow on Linux yet runs its ONNX model without it).
NO_DEPS_FILES = {"transcribe": ROOT / "scripts" / "requirements-transcribe.txt"}


def _normalize(name: str) -> str:
    """PEP 503 name: ``Google_CRC32C`` and ``google-crc32c`` are one distribution."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(requirement: str) -> str:
    return _normalize(re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement).group(1))


def _declared() -> tuple[set[str], dict[str, set[str]]]:
    """(core distributions, extra -> distributions it installs, with ``stemwright[...]`` self-references expanded)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = {_requirement_name(r) for r in project["dependencies"]}
    raw = project.get("optional-dependencies", {})

    def expand(extra: str, seen: frozenset[str] = frozenset()) -> set[str]:
        names: set[str] = set()
        for requirement in raw[extra]:
            own = re.match(r"\s*stemwright\[([^\]]+)\]", requirement)
            if own:
                for other in own.group(1).split(","):
                    if other.strip() not in seen:
                        names |= expand(other.strip(), seen | {extra})
            else:
                names.add(_requirement_name(requirement))
        return names

    extras = {extra: expand(extra) for extra in raw}
    for extra, path in NO_DEPS_FILES.items():
        extras[extra] |= set(_no_deps_requirements(path))
    return core, extras


def _no_deps_requirements(path: Path) -> dict[str, str]:
    """PEP 503 name -> ``name==version`` line of a requirements file installed with ``--no-deps``."""
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return {_requirement_name(line): line for line in lines if line}



def _third_party_imports(path: Path) -> list[tuple[str, int, bool]]:
    """``(top-level name, line, inside a function)`` of every absolute import that is not stdlib or stemwright."""
    found = []
    for node, in_function in import_statements(path):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if top != "stemwright" and top not in sys.stdlib_module_names and top != "__future__":
                found.append((top, node.lineno, in_function))
    return found


def _part(module: str) -> str | None:
    """The extra a module belongs to, or None for the core."""
    owners = [prefix for prefix in EXTRA_PARTS if module == prefix or module.startswith(prefix + ".")]
    return EXTRA_PARTS[max(owners, key=len)] if owners else None


def undeclared_imports(core: set[str], extras: dict[str, set[str]]) -> list[str]:
    """One line per import that ``pyproject.toml`` does not cover (empty when all are declared)."""
    distributions = {top: {_normalize(d) for d in dists} for top, dists in packages_distributions().items()}
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = module_name(path)
        part = _part(module)
        for top, line, in_function in _third_party_imports(path):
            where = f"{path.relative_to(ROOT)}:{line}: import {top}"
            dists = distributions.get(top)
            if not dists:
                problems.append(f"{where}: no installed distribution provides it")
                continue
            if dists & core:
                continue
            if part is not None:
                if not dists & extras.get(part, set()):
                    problems.append(f"{where}: {sorted(dists)} is not declared in the '{part}' extra (nor the core)")
            elif not in_function:
                problems.append(f"{where}: {sorted(dists)} is imported at module level by a core module but is not "
                                f"in [project.dependencies]")
            else:
                extra = OPTIONAL_PACKAGES.get(top)
                if extra is None:
                    problems.append(f"{where}: {sorted(dists)} is not a core dependency and OPTIONAL_PACKAGES names "
                                    f"no extra for it")
                elif not dists & extras.get(extra, set()):
                    problems.append(f"{where}: OPTIONAL_PACKAGES says extra '{extra}', which does not declare "
                                    f"{sorted(dists)}")
    return problems


def test_every_imported_distribution_is_declared() -> None:
    core, extras = _declared()
    problems = undeclared_imports(core, extras)
    assert not problems, "undeclared imports:\n" + "\n".join(problems)


def test_the_check_catches_an_undeclared_import() -> None:
    """Issue 21's case: ``click`` imported by the CLI but left out of the core dependencies (typer >= 0.2x no longer
    pulls it in), and an extra's import missing from its extra."""
    core, extras = _declared()
    assert any("cli/main.py" in p and "import click" in p for p in undeclared_imports(core - {"click"}, extras))
    assert any("server/" in p and "'studio' extra" in p
               for p in undeclared_imports(core, {**extras, "studio": extras["studio"] - {"fastapi"}}))


def test_no_deps_packages_have_what_they_import_declared() -> None:
    """basic-pitch is installed with --no-deps, so every distribution it requires (except TensorFlow, CoreML and
    TF Lite, whose models stemwright does not run; and scikit-learn, which only its training imports) must come from
    the core or the [transcribe] extra, and the pinned version is the one installed."""
    import importlib.metadata as md

    core, extras = _declared()
    pinned = _no_deps_requirements(NO_DEPS_FILES["transcribe"])
    assert pinned["basic-pitch"] == f"basic-pitch=={md.version('basic-pitch')}"
    unused = {"tensorflow", "tensorflow-macos", "coremltools", "tflite-runtime", "scikit-learn", "typing-extensions"}
    needed = {_requirement_name(r) for r in md.requires("basic-pitch") or () if "extra ==" not in r}
    missing = needed - unused - core - extras["transcribe"]
    assert not missing, f"basic-pitch needs {sorted(missing)}, declared neither in the core nor in [transcribe]"
    assert "onnxruntime" in extras["transcribe"]  # the runtime of the model it ships


@pytest.mark.parametrize("requirement, name", [("typer>=0.12", "typer"), ("google_crc32c>=1.5", "google-crc32c"),
                                               ("uvicorn[standard]>=0.29", "uvicorn"), ("PyYAML", "pyyaml")])
def test_requirement_names_are_normalized(requirement: str, name: str) -> None:
    assert _requirement_name(requirement) == name
