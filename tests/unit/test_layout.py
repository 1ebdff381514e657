"""The shape of the code: no import circle, the function on five floors, no module over 300 lines.

Imports are read from the source (``TYPE_CHECKING`` imports included: a type imported only for
checking still says which module needs which).
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {
    "rotation_handler": ROOT / "src",
    "ses_smtp_rotator": ROOT / "src",
    "sandbox": ROOT,
}
MAX_FLOORS = 5
MAX_LINES = 300


def _modules(package: str) -> dict[str, Path]:
    base = PACKAGES[package]
    found = {}
    for path in sorted((base / package).rglob("*.py")):
        name = ".".join(path.relative_to(base).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def imports(package: str) -> dict[str, set[str]]:
    """Map each module of ``package`` to the modules of ``package`` it imports."""
    modules = _modules(package)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        needs: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    needs.add(full if full in modules else node.module)
            elif isinstance(node, ast.Import):
                needs.update(alias.name for alias in node.names)
        graph[name] = {need for need in needs if need in modules and need != name}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Return the import circles of ``graph`` (each as the path that closes it)."""
    found: list[list[str]] = []
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        for need in sorted(graph[module]):
            if need in path:
                found.append([*path[path.index(need) :], need])
            elif need not in done:
                visit(need, [*path, need])
        done.add(module)

    for module in sorted(graph):
        if module not in done:
            visit(module, [module])
    return found


def floors(graph: dict[str, set[str]]) -> dict[str, int]:
    """Return each module's floor: 1 when it imports none of its package, else one above them."""

    @functools.cache
    def floor(module: str) -> int:
        return 1 + max((floor(need) for need in graph[module]), default=0)

    return {module: floor(module) for module in graph}


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_no_import_circle(package: str) -> None:
    # GIVEN a package's imports, TYPE_CHECKING ones included / THEN none closes a circle
    assert circles(imports(package)) == []


def test_circles_are_found() -> None:
    # GIVEN two modules importing each other / THEN the check names the circle
    assert circles({"a": {"b"}, "b": {"a"}}) == [["a", "b", "a"]]


def test_the_function_stands_on_five_floors() -> None:
    # GIVEN the rotation function's modules / THEN the top one (app) is at most the fifth floor
    found = floors(imports("rotation_handler"))
    assert max(found.values()) <= MAX_FLOORS, found
    assert found["rotation_handler.app"] == max(found.values())


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_no_module_is_over_300_lines(package: str) -> None:
    # GIVEN a package's modules / THEN each stays short enough to read in one sitting
    long = {
        name: lines
        for name, path in _modules(package).items()
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}


def test_the_status_types_sit_below_the_modules_that_use_them() -> None:
    # GIVEN the CLI's imports
    graph = imports("ses_smtp_rotator")
    # THEN the module of status's shared types imports nothing of the package
    assert graph["ses_smtp_rotator._status_model"] == set()
    # AND the judge and the renderer take their types from it, not from each other or _status
    assert graph["ses_smtp_rotator._status_problems"] == {"ses_smtp_rotator._status_model"}
    assert graph["ses_smtp_rotator._status_render"] == {"ses_smtp_rotator._status_model"}
