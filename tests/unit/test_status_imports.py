"""The ``status`` modules form no import circle, not even through a ``TYPE_CHECKING`` import."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Final

import pytest

PACKAGE: Final = Path(__file__).resolve().parents[2] / "src" / "ses_smtp_rotator"
PREFIX: Final = "ses_smtp_rotator."


def imports_of(module: str) -> set[str]:
    """Every module of the package that ``module`` imports, at run time or for type checking."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "ses_smtp_rotator":
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(PREFIX):
            found.add((node.module or "").removeprefix(PREFIX).split(".")[0])
        elif isinstance(node, ast.Import):
            found |= {
                a.name.removeprefix(PREFIX).split(".")[0]
                for a in node.names
                if a.name.startswith(PREFIX)
            }
    return {name for name in found if (PACKAGE / f"{name}.py").is_file()}


def circle_through(start: str) -> list[str] | None:
    """A path of imports from ``start`` back to itself, or ``None`` when there is none."""
    stack: list[list[str]] = [[start]]
    seen: set[str] = set()
    while stack:
        path = stack.pop()
        for name in sorted(imports_of(path[-1])):
            if name == start:
                return [*path, name]
            if name not in seen:
                seen.add(name)
                stack.append([*path, name])
    return None


@pytest.mark.parametrize(
    "module",
    [
        pytest.param("_status", id="status"),
        pytest.param("_status_problems", id="problems"),
        pytest.param("_status_render", id="render"),
        pytest.param("_status_model", id="model"),
    ],
)
def test_no_status_module_imports_itself_back(module: str) -> None:
    # GIVEN a status module / WHEN its imports are followed (TYPE_CHECKING ones too)
    circle = circle_through(module)
    # THEN none of them leads back to it
    assert circle is None, " -> ".join(circle or [])


def test_the_shared_types_sit_below_the_modules_that_use_them() -> None:
    # GIVEN the module of the shared types / THEN it imports nothing of the package
    assert imports_of("_status_model") == set()
    # AND the judge and the renderer take their types from it, not from each other or _status
    assert imports_of("_status_problems") == {"_status_model"}
    assert imports_of("_status_render") == {"_status_model"}
