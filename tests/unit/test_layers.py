"""The layering of the package, read from the imports of its source: data flows one way (model
<- config / images / systemd <- runtime <- daemon <- api, metrics, cli <- graders <- ctrd), no
package imports one above it, and no module imports itself round a cycle (docs/architecture.md).
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import REPO

SOURCE = REPO / "supervisor"

# package -> the packages it may import
ALLOWED: dict[str, set[str]] = {
    "model": set(),
    "config": {"model", "images", "oci"},
    "images": {"model"},
    "oci": {"model"},
    "systemd": {"model"},
    "runtime": {"model", "images", "systemd"},
    "daemon": {"model", "config", "images", "systemd", "runtime"},
    "api": {"model", "config", "daemon"},
    "metrics": {"model", "runtime", "daemon"},
    "cli": {"model", "config", "images", "oci", "systemd", "runtime"},
    "graders": {"model", "daemon", "api", "cli"},
    "ctrd": {"model", "config", "systemd", "runtime", "daemon", "api", "metrics", "graders"},
}


def _module(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> Iterator[str]:
    """Every supervisor module ``path`` imports, also lazily inside functions."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith("supervisor"):
                yield node.module
                for alias in node.names:  # "from supervisor.x import module"
                    candidate = f"{node.module}.{alias.name}"
                    if (SOURCE.parent / (candidate.replace(".", "/") + ".py")).exists():
                        yield candidate
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names
                        if alias.name.startswith("supervisor"))


def _graph() -> dict[str, set[str]]:
    graph = {_module(path): set(_imports(path)) for path in SOURCE.rglob("*.py")}
    return {module: targets - {module} for module, targets in graph.items()}


def _package(module: str) -> str:
    return module.split(".")[1] if module.count(".") else module


def test_no_package_imports_one_above_it() -> None:
    assert set(ALLOWED) >= {_package(m) for m in _graph() if m != "supervisor"}
    upward = sorted(f"{module} -> {target}"
                    for module, targets in _graph().items() for target in targets
                    if _package(target) != _package(module)
                    and _package(target) not in ALLOWED[_package(module)])
    assert upward == []


def test_no_import_cycle() -> None:
    graph = _graph()
    cycles: list[list[str]] = []

    def visit(module: str, path: list[str]) -> None:
        for target in sorted(graph.get(module, ())):
            if target in path:
                cycles.append([*path[path.index(target):], target])
            elif target in graph and target not in done:
                visit(target, [*path, target])
        done.add(module)

    done: set[str] = set()
    for module in sorted(graph):
        if module not in done:
            visit(module, [module])
    # A package's __init__ re-exporting its own modules is not a cycle of the design.
    real = [c for c in cycles if not any(_is_reexport(a, b) for a, b in itertools.pairwise(c))]
    assert real == []


def _is_reexport(module: str, target: str) -> bool:
    return target.startswith(f"{module}.")
