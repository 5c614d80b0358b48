"""Print gcsbi's internal import graph and its cycles.

Every ``import`` of a gcsbi module counts, at module level or inside a function (a lazy import
is still a dependency), except those under ``if TYPE_CHECKING:``. An import of a package
(``from .inference import x``) is an edge to the package's ``__init__``; ``from . import mod``
is an edge to the submodule.

    python scripts/import_graph.py            # edges per module, then cycles; exit 1 on a cycle
    python scripts/import_graph.py --packages # the same, folded to top-level sub-packages
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "gcsbi"


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _walk(node: ast.AST) -> Iterator[ast.AST]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child):
            for other in child.orelse:
                yield from _walk(other)
            continue
        yield child
        yield from _walk(child)


def imports_of(path: Path, modules: set[str], root: Path = ROOT) -> set[str]:
    """The gcsbi modules that the file at ``path`` imports."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in _walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "gcsbi":
                    out.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "gcsbi":
                continue
            subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in modules]
            if subs:
                out.update(subs)
            if not subs or len(subs) < len(node.names):
                out.add(target)
    return {m for m in out if m in modules and m != name}


def build_graph(root: Path = ROOT) -> dict[str, set[str]]:
    files = sorted(root.rglob("*.py"))
    modules = {module_name(f, root) for f in files}
    return {module_name(f, root): imports_of(f, modules, root) for f in files}


def fold(graph: dict[str, set[str]], depth: int = 2) -> dict[str, set[str]]:
    """Merge modules into their first ``depth`` name parts (``gcsbi.inference.train`` -> ``gcsbi.inference``)."""
    short = lambda m: ".".join(m.split(".")[:depth])  # noqa: E731
    out: dict[str, set[str]] = {}
    for mod, deps in graph.items():
        out.setdefault(short(mod), set()).update(short(d) for d in deps if short(d) != short(mod))
    return out


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
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
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", action="store_true", help="fold modules into sub-packages")
    args = parser.parse_args(argv)
    graph = build_graph()
    if args.packages:
        graph = fold(graph)
    for mod in sorted(graph):
        print(f"{mod} -> {', '.join(sorted(graph[mod])) or '-'}")
    cycles = find_cycles(graph)
    print(f"\n{len(cycles)} cycle(s)")
    for comp in cycles:
        print("  " + " <-> ".join(comp))
    return 1 if cycles else 0


if __name__ == "__main__":
    raise SystemExit(main())
