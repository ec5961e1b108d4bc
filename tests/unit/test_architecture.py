"""The import arrows of ARCHITECTURE.md ("Layout"), checked by walking the package's ASTs."""

from __future__ import annotations

import ast
from collections.abc import Collection
from pathlib import Path

import pytest

PACKAGE = "filegate"
SRC = Path(__file__).resolve().parents[2] / "src" / PACKAGE
CORE = ("filegate.domain", "filegate.errors")

Graph = dict[str, set[str]]


def within(name: str, layer: str) -> bool:
    return name == layer or name.startswith(layer + ".")


def module_files(root: Path = SRC) -> dict[str, Path]:
    """Dotted module name -> source file, for every module under ``root``."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def imports_of(source: str, module: str, *, is_package: bool, known: Collection[str]) -> set[str]:
    """The filegate modules ``source`` (the text of ``module``) imports, relative ones resolved."""
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, package)
            for alias in node.names:
                # `from filegate.db import migrate` imports the submodule, not just the package.
                submodule = f"{base}.{alias.name}"
                found.add(submodule if submodule in known else base)
    return {name for name in found if within(name, PACKAGE)}


def _absolute(node: ast.ImportFrom, package: str) -> str:
    if node.level == 0:
        return node.module or ""
    parts = package.split(".")
    base = ".".join(parts[: len(parts) - (node.level - 1)])
    return f"{base}.{node.module}" if node.module else base


def import_graph(root: Path = SRC) -> Graph:
    files = module_files(root)
    return {
        module: imports_of(
            path.read_text(encoding="utf-8"),
            module,
            is_package=path.name == "__init__.py",
            known=files,
        )
        for module, path in files.items()
    }


def imports_leaving(graph: Graph, layer: str, allowed: Collection[str]) -> list[str]:
    """``module -> import`` pairs where ``layer`` imports outside itself and ``allowed``."""
    return sorted(
        f"{module} -> {target}"
        for module, targets in graph.items()
        if within(module, layer)
        for target in targets
        if not any(within(target, ok) for ok in (layer, *allowed))
    )


def imports_into(graph: Graph, layer: str, importers: Collection[str]) -> list[str]:
    """``module -> import`` pairs where a module outside ``layer`` and ``importers`` imports it."""
    return sorted(
        f"{module} -> {target}"
        for module, targets in graph.items()
        if not any(within(module, ok) for ok in (layer, *importers))
        for target in targets
        if within(target, layer)
    )


def against_the_arrows(rule: str, pairs: list[str]) -> str:
    return f"{rule}; these imports break it (see ARCHITECTURE.md, Layout):\n  " + "\n  ".join(pairs)


@pytest.fixture(scope="module")
def graph() -> Graph:
    return import_graph()


def test_the_walker_sees_the_real_package(graph: Graph) -> None:
    # Guards the rules below against passing because nothing was found.
    cli = set().union(
        *(targets for module, targets in graph.items() if within(module, "filegate.cli"))
    )
    assert "filegate.web.app" in cli
    assert "filegate.db.migrate" in cli
    assert "filegate.inspect.names" in graph["filegate.inspect.pipeline"]


def test_the_checker_reports_a_forbidden_import() -> None:
    source = (
        "from filegate.web.app import create_app\n"
        "from ..domain import Finding\n"
        "from . import names\n"
        "import filegate.errors\n"
    )
    module = "filegate.inspect.x"
    fake = {module: imports_of(source, module, is_package=False, known=module_files())}

    assert fake[module] == {
        "filegate.web.app",
        "filegate.domain",
        "filegate.inspect.names",
        "filegate.errors",
    }
    assert imports_leaving(fake, "filegate.inspect", CORE) == [
        "filegate.inspect.x -> filegate.web.app"
    ]
    assert imports_into(fake, "filegate.web", ["filegate.cli"]) == [
        "filegate.inspect.x -> filegate.web.app"
    ]


def test_only_the_composition_root_imports_the_web_layer(graph: Graph) -> None:
    # cli/ is the composition root: `serve` has to build the app, so it may import web/.
    bad = imports_into(graph, "filegate.web", ["filegate.cli"])
    assert not bad, against_the_arrows("Only web/ itself and cli/ import filegate.web", bad)


def test_only_main_imports_the_cli(graph: Graph) -> None:
    bad = imports_into(graph, "filegate.cli", ["filegate.__main__"])
    assert not bad, against_the_arrows("Only filegate.__main__ imports filegate.cli", bad)


@pytest.mark.parametrize(
    ("layer", "allowed"),
    [
        ("filegate.errors", ()),
        ("filegate.domain", ("filegate.errors",)),
        ("filegate.config", CORE),
    ],
)
def test_the_core_modules_point_inward(graph: Graph, layer: str, allowed: tuple[str, ...]) -> None:
    bad = imports_leaving(graph, layer, allowed)
    rule = f"{layer} imports only {', '.join(allowed) or 'nothing of ours'}"
    assert not bad, against_the_arrows(rule, bad)


@pytest.mark.parametrize("package", ["inspect", "tus", "storage", "db"])
def test_pure_packages_import_only_domain_and_errors(graph: Graph, package: str) -> None:
    bad = imports_leaving(graph, f"filegate.{package}", CORE)
    rule = f"{package}/ imports only domain, errors and itself"
    assert not bad, against_the_arrows(rule, bad)
