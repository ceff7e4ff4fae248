"""No import circle in ``worker/``, ``generator/`` or ``exports/``: every ``import`` statement
counts, wherever it stands (in a function, under ``TYPE_CHECKING``), read with ``ast``."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("worker", "generator", "exports")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def _targets(node: ast.AST, here: str, is_package: bool) -> list[str]:
    """The dotted names one import statement may load (a name may be a submodule)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = node.module or ""
    if node.level:
        anchor = here.split(".")
        anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
        base = ".".join(anchor + ([base] if base else []))
    return [base] + [f"{base}.{alias.name}" for alias in node.names]


def graph() -> dict[str, set[str]]:
    """module -> the modules of these packages it imports (the longest known name wins)."""
    known = modules()
    edges: dict[str, set[str]] = {}
    for name, path in known.items():
        is_package = path.name == "__init__.py"
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = _targets(node, name, is_package)
            subs = [n for n in names[1:] if n in known] if isinstance(node, ast.ImportFrom) else []
            if subs:
                found.update(subs)
            else:
                found.update(n for n in names[:1] if n in known)
                if isinstance(node, ast.Import):
                    found.update(n for n in names if n in known)
        found.discard(name)
        edges[name] = found
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
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
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_the_walker_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_walker_reads_type_checking_and_function_imports():
    edges = graph()
    assert "worker.config" in edges["worker.rsgi"]  # imported inside a function
    assert "worker.http" in edges["worker.routing"]


def test_no_import_circle():
    assert cycles(graph()) == []


FLOORS = {"exports": {"exports", "worker"}, "worker": {"worker"}}


def test_no_import_runs_back_up_a_floor():
    """``generator`` may import ``exports`` and ``worker``; ``exports`` only ``worker``; the worker
    only itself, and its contract only itself (the build and the edge both read it)."""
    wrong = []
    for module, targets in graph().items():
        floor = module.split(".")[0]
        allowed = {"worker.contract"} if module.startswith("worker.contract") else FLOORS.get(floor)
        if allowed is None:
            continue
        for target in targets:
            if not any(target == a or target.startswith(a + ".") for a in allowed):
                wrong.append((module, target))
    assert wrong == []


def test_no_package_is_an_open_hall():
    """A package of more than 15 modules is missing a room."""
    sizes = {}
    for pkg in PACKAGES:
        for folder in [ROOT / pkg, *(p for p in (ROOT / pkg).rglob("*") if p.is_dir())]:
            count = len([p for p in folder.glob("*.py") if p.name != "__init__.py"])
            if count:
                sizes[str(folder.relative_to(ROOT))] = count
    assert {name: n for name, n in sizes.items() if n > 15} == {}
    assert sizes["worker/endpoints"] >= 10  # the walk saw the packages


def test_every_package_says_what_it_owns():
    for pkg in PACKAGES:
        for init in [ROOT / pkg / "__init__.py", *(ROOT / pkg).rglob("*/__init__.py")]:
            doc = ast.get_docstring(ast.parse(init.read_text("utf-8")))
            assert doc and len(doc) > 40, init
