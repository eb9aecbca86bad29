"""The import contract of docs/architecture.md, checked by machine: no import cycle between modules, and
no module importing from a row above its own (type-checking-only imports count: they are edges too).

A module's row is that of its top-level name under ``sluicegate`` (``catalog/cache.py`` is in the
``catalog`` row); a package's own modules may import each other, but never in a cycle. Adding a top-level
module or package means giving it a row here and in docs/architecture.md.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "sluicegate"

# Top to bottom; a module may import only from rows below its own (or its own package).
ROWS: list[set[str]] = [
    {"__main__"},
    {"cli"},
    {"serve"},
    {"app"},
    {"dashboard"},
    {"server"},
    {"cache"},
    {"pipeline"},
    {"dispatch"},
    {"prepare"},
    {"catalog", "access", "limits"},
    {"telemetry"},
    {"upstream", "vault", "cluster"},
    {"store"},
    {"types"},
    {"providers", "routing"},
    {"config"},
    {"header_names", "ids", "jsontext"},
    {"errors", "foreground", "settings", "tasks", "write_batch"},
    {"numerals"},
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    found = {module_name(p): p for p in SRC.rglob("*.py") if "migrations" not in p.parts}
    found.pop("", None)
    return found


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The sluicegate modules ``name`` imports. ``from pkg import mod`` is an edge to ``pkg.mod`` (not to the
    package's ``__init__``, which Python runs first whatever is imported); ``from pkg import Name`` to ``pkg``."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    edges: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [_local(alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                stem = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
            else:
                stem = _local(node.module or "")
            targets = [f"{stem}.{a.name}".strip(".") if f"{stem}.{a.name}".strip(".") in known else stem
                       for a in node.names]
        else:
            continue
        edges.update(target for target in targets if target in known)
    edges.discard(name)
    return edges


def _local(dotted: str) -> str:
    """``sluicegate.config.model`` → ``config.model``; anything else (a library) → ""."""
    if dotted == "sluicegate" or not dotted.startswith("sluicegate."):
        return ""
    return dotted.removeprefix("sluicegate.")


def row_of(module: str) -> int:
    top = module.split(".")[0]
    for index, row in enumerate(ROWS):
        if top in row:
            return index
    raise AssertionError(f"{module} has no row: add it to ROWS here and to docs/architecture.md")


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: imports_of(name, path, known) for name, path in found.items()}


def test_every_module_has_a_row():
    for name in modules():
        row_of(name)


def test_no_module_imports_from_a_row_above_its_own():
    upward = []
    for name, targets in graph().items():
        for target in targets:
            same_package = name.split(".")[0] == target.split(".")[0]
            if not same_package and row_of(target) < row_of(name):
                upward.append(f"{name} -> {target}")
            elif not same_package and row_of(target) == row_of(name):
                upward.append(f"{name} -> {target} (same row)")
    assert upward == []


def test_no_import_cycles():
    edges = graph()
    cycles = [component for component in strongly_connected(edges) if len(component) > 1]
    assert cycles == []


def test_a_spec_module_is_imported_by_the_registry_only():
    """A provider spec is one module plus one line in providers/registry.py (docs/architecture.md): nothing
    else imports a spec module, so adding one touches nothing else (the catalog, the config schema, the
    CLI and the dashboard read the registry)."""
    from sluicegate.providers import registry

    specs = {type(spec).__module__.removeprefix("sluicegate.") for spec in registry.SPECS.values()}
    assert specs and specs <= set(modules())
    importers = sorted(f"{name} -> {target}" for name, targets in graph().items()
                       for target in targets & specs if name != "providers.registry")
    assert importers == []


def strongly_connected(edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    result: list[list[str]] = []
    counter = 0
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in edges:
                    continue
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                result.append(sorted(component))
    return result


@pytest.mark.parametrize(("edges", "cyclic"), [
    ({"a": {"b"}, "b": {"a"}}, True),
    ({"a": {"b"}, "b": {"c"}, "c": set()}, False),
])
def test_the_cycle_finder_finds_cycles(edges, cyclic):
    assert any(len(c) > 1 for c in strongly_connected(edges)) is cyclic
