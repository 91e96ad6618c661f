"""No import cycles in the package: every import counts, also those inside functions.

An import inside a function hides a cycle from Python at import time, not from the design:
the two modules still depend on each other. This walks the source with ``ast``.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "deployer"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _targets(node: ast.AST, here: str, is_package: bool, known: set[str]) -> set[str]:
    found: set[str] = set()
    if isinstance(node, ast.Import):
        for alias in node.names:
            found.add(alias.name)
    elif isinstance(node, ast.ImportFrom):
        if node.level:
            base = here.split(".")
            drop = node.level - 1 if is_package else node.level
            base = base[: len(base) - drop] if drop else base
            module = ".".join([*base, node.module] if node.module else base)
        else:
            module = node.module or ""
        found.add(module)
        for alias in node.names:
            sub = f"{module}.{alias.name}"
            if sub in known:  # `from package import submodule`
                found.add(sub)
    return {m for m in found if m in known}


def _type_checking(node: ast.AST) -> bool:
    """``if TYPE_CHECKING:``: imports for annotations only, never executed."""
    if not isinstance(node, ast.If):
        return False
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node that runs (module level, in functions, in classes), without the bodies of
    ``if TYPE_CHECKING:`` blocks (their ``else`` still runs)."""
    out: list[ast.AST] = []
    todo = [tree]
    while todo:
        node = todo.pop()
        out.append(node)
        if _type_checking(node):
            assert isinstance(node, ast.If)
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))
    return out


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    edges: dict[str, set[str]] = {}
    for name, path in mods.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        is_package = path.name == "__init__.py"
        deps: set[str] = set()
        for node in _runtime_nodes(tree):
            deps |= _targets(node, name, is_package, known)
        # Importing a.b.c runs a/__init__ and a/b/__init__ first.
        for dep in list(deps):
            parts = dep.split(".")
            parents = {".".join(parts[:i]) for i in range(2, len(parts))}
            deps |= parents & known
        deps.discard(name)
        # A package importing its own submodules (re-exports) is not a cycle of the design.
        edges[name] = {d for d in deps if not (is_package and d.startswith(name + "."))}
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_the_package_has_no_import_cycle() -> None:
    found = cycles(graph())
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def test_the_walk_sees_imports_inside_functions() -> None:
    edges = graph()
    assert edges.get("deployer.cli"), "the walk found no imports"
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_imports_for_type_checking_only_are_not_run_time_edges() -> None:
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from deployer.a import A\n"
        "else:\n    from deployer.b import B\n"
    )
    deps: set[str] = set()
    for node in _runtime_nodes(tree):
        deps |= _targets(node, "deployer.x", False, {"deployer.a", "deployer.b"})
    assert deps == {"deployer.b"}


def test_a_function_level_import_back_is_a_cycle() -> None:
    tree = ast.parse("def f():\n    from deployer.commands import deploy\n")
    deps: set[str] = set()
    for node in ast.walk(tree):
        known = {"deployer.commands.deploy", "deployer.commands"}
        deps |= _targets(node, "deployer.swarm.x", False, known)
    assert "deployer.commands.deploy" in deps
