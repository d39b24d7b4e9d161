"""The order of layers (DESIGN.md): sr_data -> metrics -> sr_models -> baselines -> study_app -> analysis
-> prsr. A package imports only packages before it, and no two files import each other (directly or
round a longer loop). An AST scan of every module: top-level and function-level imports, relative
imports, and "pkg.module:Class" string literals (lazy targets, e.g. the method registry's) all count."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ORDER = ["sr_data", "metrics", "sr_models", "baselines", "study_app", "analysis", "prsr"]
ROOT = Path(__file__).resolve().parents[1]
TARGET = re.compile(r"^([A-Za-z_]\w*(?:\.\w+)*):[A-Za-z_]\w*$")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict:
    return {module_name(p): p for pkg in ORDER for p in sorted((ROOT / pkg).rglob("*.py"))}


def imported_names(path: Path, name: str):
    """(imported module name, line) for every import and "module:Class" string in the file."""
    is_pkg = path.name == "__init__.py"
    package = name if is_pkg else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module
            yield mod, node.lineno
            for alias in node.names:  # `from . import cache` imports the module sr_data.cache
                yield f"{mod}.{alias.name}", node.lineno
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            m = TARGET.match(node.value)
            if m and m.group(1).split(".")[0] in ORDER:
                yield m.group(1), node.lineno


def edges():
    mods = modules()
    out = {}
    for name, path in mods.items():
        deps = set()
        for target, line in imported_names(path, name):
            if target.split(".")[0] in ORDER:
                deps.add((target, line))
        out[name] = deps
    return mods, out


def test_every_package_imports_only_packages_before_it():
    rank = {p: i for i, p in enumerate(ORDER)}
    _, graph = edges()
    bad = [
        f"{name}:{line} imports {target}"
        for name, deps in graph.items()
        for target, line in deps
        if rank[target.split(".")[0]] > rank[name.split(".")[0]]
    ]
    assert not bad, "imports against the layer order:\n" + "\n".join(sorted(bad))


def test_no_file_import_cycles():
    mods, graph = edges()

    # file -> files it imports (a package's __init__ counts only when imported by its own name)
    # (a file's own package ancestors are left out: Python runs them before any submodule anyway;
    # `from pkg import mod` counts as an import of pkg.mod alone)
    def files(name, deps):
        out = set()
        for t, _ in deps:
            if t not in mods or t == name or name.startswith(t + "."):
                continue
            out.add(t)
        return out - {t for t in out if any(o.startswith(t + ".") for o in out)}

    adj = {name: sorted(files(name, deps)) for name, deps in graph.items()}
    colour, stack, cycles = {}, [], []

    def visit(node):
        colour[node] = 1
        stack.append(node)
        for nxt in adj[node]:
            if colour.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in colour:
                visit(nxt)
        stack.pop()
        colour[node] = 2

    for node in adj:
        if node not in colour:
            visit(node)
    assert not cycles, "file import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_scan_sees_function_level_imports_and_target_strings(tmp_path):
    # the scan must not be blind to what it claims to check
    src = ROOT / "baselines" / "registry.py"
    names = {t for t, _ in imported_names(src, "baselines.registry")}
    assert "sr_models.pixel_recursive" in names  # a "module:Class" string
    assert "sr_models.checkpoint" in names  # an import inside a function
