"""No import cycle among i2v modules: the graph is read from the source with ast (every `import`, at the top or
inside a function, since a lazy import only hides a loop), so a new module is covered without editing a list."""
from __future__ import annotations

import ast
import pkgutil
from pathlib import Path

import i2v

ROOT = Path(i2v.__file__).parent


def module_files() -> dict[str, Path]:
    """Every i2v module name -> its source file."""
    names = {"i2v": ROOT / "__init__.py"}
    for info in pkgutil.walk_packages([str(ROOT)], prefix="i2v."):
        path = ROOT.joinpath(*info.name.split(".")[1:])
        names[info.name] = path / "__init__.py" if info.ispkg else path.with_suffix(".py")
    return names


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The i2v modules one module imports (`from pkg import mod` names the submodule when it is one)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {m for m in found if m in known and m != name}


def import_graph() -> dict[str, set[str]]:
    files = module_files()
    return {name: imports_of(name, path, set(files)) for name, path in files.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each strongly connected component of more than one module (Tarjan), as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def is_package_edge(a: str, b: str) -> bool:
    """A package importing its own submodule (i2v.worker -> i2v.worker.child) and the submodule reaching back
    to a sibling through the package are one unit, not a loop between jobs."""
    return b.startswith(a + ".") or a.startswith(b + ".")


def test_the_graph_is_read():
    """The reader finds known edges (so an empty graph cannot pass the cycle test)."""
    graph = import_graph()
    assert "i2v.core.errors" in graph["i2v.core.settings"]
    assert "i2v.worker.protocol" in graph["i2v.worker.child"]
    assert len(graph) > 40


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_among_i2v_modules():
    graph = {a: {b for b in deps if not is_package_edge(a, b)} for a, deps in import_graph().items()}
    assert cycles(graph) == []


MAX_MODULE_LINES = 400     # issue 27: a module over this does more than one job; split it along its seams


def test_no_module_in_i2v_is_over_the_line_limit():
    """Counted from the files, so a module that grows past the limit fails here, whoever grows it."""
    from tests.conftest import ROOT

    sizes = {str(p.relative_to(ROOT)): len(p.read_text(encoding="utf-8").splitlines())
             for p in (ROOT / "i2v").rglob("*.py")}
    assert len(sizes) > 50                                  # the scan saw the package
    assert {name: n for name, n in sizes.items() if n > MAX_MODULE_LINES} == {}
