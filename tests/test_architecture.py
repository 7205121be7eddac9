"""The package's shape: wings, no import cycles, the layer contracts, one plugin API.

docs/architecture.md describes the layers; ``[tool.importlinter]`` in pyproject.toml states
them as contracts, which ``lint-imports`` checks in CI (.ci/lint.sh) and
:func:`test_layer_contracts_hold` checks here.
"""

from __future__ import annotations

import ast
import importlib
import re
import sys
import warnings
from pathlib import Path

import grimp
import pytest
import tomllib

import removalx
import removalx_plugins
from removalx import _compat

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = Path(removalx.__file__).resolve().parent
PLUGINS = Path(removalx_plugins.__file__).resolve().parent
#: The modules allowed at the package root: the facade, the errors every layer raises, the
#: plugin API and the old import paths' aliases.
ROOT_MODULES = {"__init__.py", "_compat.py", "errors.py", "plugin.py"}


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _strongly_connected(adjacency: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm (iterative): the components of more than one module, or one importing itself."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for root in sorted(adjacency):
        if root in index:
            continue
        work = [(root, iter(sorted(adjacency[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(adjacency.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    comp.append(m)
                    if m == node:
                        break
                if len(comp) > 1 or node in adjacency.get(node, ()):
                    out.append(sorted(comp))
    return out


def test_strongly_connected_finds_a_cycle_and_nothing_else():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _strongly_connected(graph) == [["a", "b", "c"]]
    assert _strongly_connected({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    """No cycle between modules of removalx/ or removalx_plugins/, imports inside functions and
    ``if TYPE_CHECKING:`` blocks included (grimp records every import statement)."""
    graph = grimp.build_graph("removalx", "removalx_plugins", cache_dir=None)
    adjacency = {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    cycles = _strongly_connected(adjacency)
    details = []
    for comp in cycles:
        members = set(comp)
        edges = [f"{a} -> {b}" for a in comp for b in sorted(adjacency[a]) if b in members]
        details.append("; ".join(edges))
    assert not cycles, "import cycles:\n" + "\n".join(details)


def test_layer_contracts_hold(capsys):
    """The import-linter contracts of pyproject.toml (the same check as `lint-imports` in CI)."""
    from importlinter.cli import lint_imports

    code = lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True, no_logo=True)
    out = capsys.readouterr().out
    n_contracts = len(_pyproject()["tool"]["importlinter"]["contracts"])
    assert code == 0, out
    assert f"Contracts: {n_contracts} kept, 0 broken." in out


def test_package_root_holds_the_facade_and_a_handful_of_modules():
    modules = {p.name for p in PACKAGE.glob("*.py")}
    assert modules == ROOT_MODULES


def test_builtin_plugins_import_removalx_through_the_plugin_api_only():
    offenders = []
    for path in sorted(PLUGINS.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                if (name == "removalx" or name.startswith("removalx.")) and name != "removalx.plugin":
                    offenders.append(f"{path.relative_to(PLUGINS.parent)}:{node.lineno} imports {name}")
    assert not offenders, "\n".join(offenders)


def test_plugin_api_exports_what_it_promises():
    import removalx.plugin as api

    missing = [name for name in api.__all__ if not hasattr(api, name)]
    assert not missing
    for name in ("hookimpl", "Segmenter", "Removal", "PluginConfig", "Attribution", "VideoClassifier"):
        assert name in api.__all__


@pytest.mark.parametrize("old", sorted(_compat.MOVED))
def test_old_import_paths_warn_and_give_the_moved_module(old):
    new = _compat.MOVED[old]
    saved = sys.modules.pop(old, None)
    try:
        with pytest.warns(DeprecationWarning, match=re.escape(new)):
            module = importlib.import_module(old)
        assert module is importlib.import_module(new)
        assert module.__spec__.name == new  # the moved module keeps its own spec
    finally:
        sys.modules.pop(old, None)
        if saved is not None:
            sys.modules[old] = saved


def test_the_deprecation_warning_points_at_the_importing_code():
    """Attributed to the importer (not to the import system), so Python's default filters show
    it when a script run as ``__main__`` imports an old path."""
    for statement in (
        "import removalx.io",
        "from removalx.rng import hash_uniform",
        "importlib.import_module('removalx.wls')",
    ):
        for old in ("removalx.io", "removalx.rng", "removalx.wls"):
            sys.modules.pop(old, None)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            exec(compile(statement, __file__, "exec"), {"importlib": importlib})
        moved = [
            w for w in caught if issubclass(w.category, DeprecationWarning) and "moved to" in str(w.message)
        ]
        assert len(moved) == 1, statement
        assert moved[0].filename == __file__, (statement, moved[0].filename)
    for old in ("removalx.io", "removalx.rng", "removalx.wls"):
        sys.modules.pop(old, None)


def test_old_from_import_of_a_name_still_works():
    sys.modules.pop("removalx.types", None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from removalx.types import Attribution as Old
    from removalx.core.types import Attribution

    assert Old is Attribution


def test_unknown_modules_are_not_aliased():
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("removalx.no_such_module")


def test_architecture_doc_matches_the_contracts():
    """docs/architecture.md names every layer of the wings contract, top to bottom, in its diagram."""
    doc = (ROOT / "docs" / "architecture.md").read_text()
    diagram = doc[doc.index("```mermaid") : doc.index("```", doc.index("```mermaid") + 3)]
    contracts = _pyproject()["tool"]["importlinter"]["contracts"]
    layers = next(c for c in contracts if c["id"] == "wings")["layers"]
    positions = []
    for layer in layers:
        for module in (m.strip() for m in layer.split("|")):
            assert module in diagram, f"{module} is missing from the diagram of docs/architecture.md"
            positions.append(diagram.index(module))
    assert positions == sorted(positions), "the diagram lists the layers in another order than the contract"
    prose = " ".join(doc.split())
    for contract in contracts:
        assert contract["name"] in prose, (
            f"docs/architecture.md does not state the contract {contract['name']!r}"
        )
