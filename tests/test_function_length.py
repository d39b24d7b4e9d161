"""No function or method in the packages is longer than 80 lines (DESIGN.md, "How code is written here"):
a longer one carries whole stages and becomes named stages, each readable alone. An AST scan of every
module; a function's length runs from its `def` (decorators excluded) to its last line, docstring included."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGES = ["sr_data", "metrics", "sr_models", "baselines", "study_app", "analysis", "prsr"]
ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 80


def long_functions(path: Path, limit: int = MAX_LINES) -> list[str]:
    """'file:line name (N lines)' for each function or method of `path` longer than `limit` lines."""
    tree = ast.parse(path.read_text(), str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            n = node.end_lineno - node.lineno + 1
            if n > limit:
                where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
                out.append(f"{where}:{node.lineno} {node.name} ({n} lines)")
    return out


def test_the_scan_sees_a_long_function(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES))  # def line + 80 body lines = 81 lines
    path = tmp_path / "probe.py"
    path.write_text(f"def long():\n{body}\n\n\nclass A:\n    def short(self):\n        return 1\n")
    assert long_functions(path) == ["probe.py:1 long (81 lines)"]
    assert long_functions(path, limit=81) == []


@pytest.mark.parametrize("package", PACKAGES)
def test_no_function_over_80_lines(package):
    found = [hit for path in sorted((ROOT / package).rglob("*.py")) for hit in long_functions(path)]
    assert not found, f"functions over {MAX_LINES} lines (split them into named stages):\n" + "\n".join(found)
