"""The package's structure stays true: layers, no import cycles, a small top level, argparse
only in the CLI.

The import graph is read from the source with `ast`: every import statement counts, those
inside functions too. Imports under `if TYPE_CHECKING:` are typing-only: they never run, so
they are left out of the runtime graph and checked on their own. Importing `pgvdrill.p.m`
from outside package `p` also runs `p/__init__.py`: the runtime graph has that edge too.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "pgvdrill"

# Bottom to top: a module may import only from its own layer or a layer below it.
LAYERS: tuple[tuple[str, ...], ...] = (
    (
        "errors", "identifiers", "files", "proc", "restore_status", "osuser", "installation",
        "capabilities",
        "timing", "statement_log", "server", "config", "cluster", "dataset", "backends",
    ),
    ("logical", "physical", "wal", "verify", "repository", "providers"),
    ("backup", "policy", "report"),
    ("drill",),
    ("ops", "bench", "procedures"),
    ("cli",),
)  # fmt: skip
LAYER = {name: level for level, names in enumerate(LAYERS) for name in names}
MAX_TOP_LEVEL_MODULES = 12
ARGPARSE_HOMES = ("pgvdrill/cli/", "pgvdrill/wal/walcmd.py")
NO_NAMESPACE_PACKAGES = ("ops", "drill")
TYPES_ONLY_BETWEEN = frozenset({"pgvdrill.physical", "pgvdrill.wal"})


@dataclass(frozen=True, order=True)
class Import:
    """One edge of the graph: `source` imports `target` at `where` (file:line)."""

    where: str
    source: str
    target: str
    typing_only: bool = False
    via_init: str = ""  # the module named in the statement when `target` is its package

    def __str__(self) -> str:
        what = f"{self.via_init} (which runs {self.target})" if self.via_init else self.target
        return f"{self.where}: {self.source} imports {what}" + (
            " [typing only]" if self.typing_only else ""
        )


def module_names(root: Path) -> dict[str, Path]:
    """Dotted name of every module under `root` (a package's `__init__` is the package)."""
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def statements(tree: ast.AST) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement anywhere in `tree`, and whether it is typing-only."""
    return within(ast.iter_child_nodes(tree), typing_only=False)


def within(
    nodes: Iterable[ast.AST], typing_only: bool
) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    for node in nodes:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node, typing_only
        elif isinstance(node, ast.If) and is_type_checking(node.test):
            yield from within(node.body, typing_only=True)
            yield from within(node.orelse, typing_only)
        else:
            yield from within(ast.iter_child_nodes(node), typing_only)


def imported(
    node: ast.Import | ast.ImportFrom, package: str, names: Mapping[str, Path]
) -> Iterator[str]:
    """The modules of `names` one import statement names (the nearest existing parent)."""

    def nearest(name: str) -> str:
        while name and name not in names:
            name = name.rpartition(".")[0]
        return name

    if isinstance(node, ast.Import):
        yield from (nearest(alias.name) for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            parts = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join([*parts, *([base] if base else [])])
        for alias in node.names:
            full = f"{base}.{alias.name}"
            yield full if full in names else nearest(base)


def package_inits(source: str, target: str, names: Mapping[str, Path]) -> Iterator[str]:
    """The packages whose `__init__` importing `target` from `source` runs first."""
    parts = target.split(".")
    for end in range(2, len(parts)):
        package = ".".join(parts[:end])
        if package in names and not (source + ".").startswith(package + "."):
            yield package


def import_graph(root: Path = PACKAGE) -> list[Import]:
    """Every import between modules of the package under `root`."""
    names = module_names(root)
    edges: set[Import] = set()
    for source, path in names.items():
        package = source if path.name == "__init__.py" else source.rpartition(".")[0]
        relative = path.relative_to(root.parent).as_posix()
        for node, typing_only in statements(ast.parse(path.read_text(), str(path))):
            where = f"{relative}:{node.lineno}"
            for target in imported(node, package, names):
                if target and target != source:
                    edges.add(Import(where, source, target, typing_only))
                    for init in package_inits(source, target, names):
                        edges.add(Import(where, source, init, typing_only, via_init=target))
    return sorted(edges)


def top(module: str) -> str:
    """The package (or top-level module) a module belongs to: `pgvdrill.<name>`."""
    return ".".join(module.split(".")[:2])


def layer(module: str) -> int:
    return LAYER.get(module.split(".")[1], 0) if "." in module else 0


def describe_layer(module: str) -> str:
    name = module.split(".")[1] if "." in module else module
    return f"layer {layer(module)} ({name})"


def cycles(edges: Iterable[tuple[str, str, Import]]) -> list[tuple[list[str], list[Import]]]:
    """Each strongly connected component of more than one node, with one shortest cycle
    through it as the imports that close it."""
    graph: dict[str, dict[str, Import]] = defaultdict(dict)
    for a, b, edge in sorted(edges, key=lambda e: e[2]):
        if a != b:
            graph[a].setdefault(b, edge)
    found = []
    for component in components(graph):
        start = min(component)
        paths: dict[str, list[Import]] = {start: []}
        frontier = [start]
        while frontier and start not in {b for a in frontier for b in graph[a]}:
            nxt = []
            for a in frontier:
                for b, edge in sorted(graph[a].items()):
                    if b in component and b not in paths:
                        paths[b] = [*paths[a], edge]
                        nxt.append(b)
            frontier = nxt
        last = min(a for a in frontier if start in graph[a])
        found.append((sorted(component), [*paths[last], graph[last][start]]))
    return found


def components(graph: Mapping[str, Mapping[str, Import]]) -> list[set[str]]:
    """Strongly connected components with more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    result = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    work.append((child, iter(sorted(graph.get(child, {})))))
                elif child in stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    result.append(component)
    return result


def describe(found: list[tuple[list[str], list[Import]]]) -> str:
    return "\n".join(
        f"{len(members)} in a cycle: {', '.join(members)}; one cycle:\n"
        + "\n".join(f"  {edge}" for edge in cycle)
        for members, cycle in found
    )


@pytest.fixture(scope="module")
def graph() -> list[Import]:
    edges = import_graph()
    assert len({e.source for e in edges}) > 100, f"the graph of {PACKAGE} looks empty"
    return edges


def test_the_graph_counts_function_level_relative_and_typing_only_imports(
    tmp_path: Path,
) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("from pkg.sub import inner\n")
    (package / "sub" / "inner.py").write_text("")
    (package / "low.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from pkg import high\n"
        "else:\n"
        "    import pkg.sub.inner\n"
        "def later():\n"
        "    from . import high\n"
    )
    (package / "high.py").write_text("from .sub.inner import thing\n")
    assert {(e.where, e.target, e.typing_only, e.via_init) for e in import_graph(package)} == {
        ("pkg/low.py:3", "pkg.high", True, ""),
        ("pkg/low.py:5", "pkg.sub.inner", False, ""),
        ("pkg/low.py:5", "pkg.sub", False, "pkg.sub.inner"),
        ("pkg/low.py:7", "pkg.high", False, ""),
        ("pkg/high.py:1", "pkg.sub.inner", False, ""),
        ("pkg/high.py:1", "pkg.sub", False, "pkg.sub.inner"),
        ("pkg/sub/__init__.py:1", "pkg.sub.inner", False, ""),
    }


def test_cycles_name_the_imports_that_close_them() -> None:
    a_b, b_c, c_a = (Import(f"{s}.py:1", s, t) for s, t in ("ab", "bc", "ca"))
    edges = [(e.source, e.target, e) for e in (a_b, b_c, c_a, Import("d.py:1", "d", "a"))]
    assert cycles(edges) == [(["a", "b", "c"], [a_b, b_c, c_a])]


def test_every_package_and_top_level_module_has_a_layer() -> None:
    unplaced = sorted(
        p.stem for p in PACKAGE.iterdir()
        if p.stem not in LAYER and (p.suffix == ".py" or (p / "__init__.py").exists())
        and p.name != "__init__.py"
    )  # fmt: skip
    assert not unplaced, f"in no layer of LAYERS in {__file__}: {unplaced}"


def test_no_module_imports_from_a_layer_above_its_own(graph: list[Import]) -> None:
    upward = [
        f"{edge}: {describe_layer(edge.source)} imports {describe_layer(edge.target)}"
        for edge in graph
        if not edge.via_init and layer(edge.target) > layer(edge.source)
    ]
    assert not upward, "imports from a layer above:\n" + "\n".join(upward)


def test_no_import_cycle_among_modules(graph: list[Import]) -> None:
    found = cycles((e.source, e.target, e) for e in graph if not e.typing_only)
    assert not found, "runtime import cycles among modules:\n" + describe(found)


def test_no_import_cycle_among_packages(graph: list[Import]) -> None:
    found = cycles((top(e.source), top(e.target), e) for e in graph if not e.typing_only)
    assert not found, "runtime import cycles among packages:\n" + describe(found)


def test_typing_only_imports_close_no_package_cycle_but_physical_wal(
    graph: list[Import],
) -> None:
    found = cycles(
        (top(e.source), top(e.target), e)
        for e in graph
        if not (e.typing_only and {top(e.source), top(e.target)} == TYPES_ONLY_BETWEEN)
    )
    assert not found, "package cycles counting typing-only imports:\n" + describe(found)


def test_physical_and_wal_import_each_other_only_for_types(graph: list[Import]) -> None:
    crossing = [
        str(e) for e in graph
        if not e.typing_only and {top(e.source), top(e.target)} == TYPES_ONLY_BETWEEN
    ]  # fmt: skip
    assert not crossing, "runtime imports between physical and wal:\n" + "\n".join(crossing)


def test_the_top_level_holds_at_most_a_dozen_modules() -> None:
    modules = sorted(p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py")
    assert len(modules) <= MAX_TOP_LEVEL_MODULES, (
        f"{len(modules)} modules at the top level of {PACKAGE}: {modules}"
    )


def test_only_the_cli_imports_argparse() -> None:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE.parent).as_posix()
        if relative.startswith(ARGPARSE_HOMES):
            continue
        for node, _ in statements(ast.parse(path.read_text(), str(path))):
            names = (
                [a.name for a in node.names] if isinstance(node, ast.Import)
                else [node.module or ""]
            )  # fmt: skip
            if any(name.split(".")[0] == "argparse" for name in names):
                found.append(f"{relative}:{node.lineno}: {ast.unparse(node)}")
    assert not found, "argparse outside cli/ and wal/walcmd.py:\n" + "\n".join(found)


def test_ops_and_drill_take_no_namespace() -> None:
    found = []
    for package in NO_NAMESPACE_PACKAGES:
        for path in sorted((PACKAGE / package).rglob("*.py")):
            relative = path.relative_to(PACKAGE.parent).as_posix()
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.arg) and node.annotation is not None:
                    annotation = ast.unparse(node.annotation)
                    if "Namespace" in annotation:
                        found.append(f"{relative}:{node.lineno}: {node.arg}: {annotation}")
    assert not found, "parameters taking a Namespace:\n" + "\n".join(found)
