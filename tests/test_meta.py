"""Meta-tests: every hook and built-in plugin is documented; every recipe cites its source."""

from __future__ import annotations

import inspect
import pathlib
import sys

import pytest

import removalx
from removalx import hookspecs
from removalx.recipe import builtin_recipes, load_recipe
from removalx.registry import STAGES

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = "\n".join(p.read_text() for p in (ROOT / "docs").glob("*.md"))

BUILTIN = [
    (stage, spec.name)
    for stage in STAGES
    for spec in removalx.get_registry().specs(stage)
    if spec.source == "removalx"
]


def test_every_hook_is_documented():
    hooks = [
        n for n, f in inspect.getmembers(hookspecs, inspect.isfunction) if n.startswith("removalx_register")
    ]
    assert len(hooks) == len(STAGES)
    plugins_doc = (ROOT / "docs" / "plugins.md").read_text()
    for name in hooks:
        assert name in plugins_doc, f"{name} missing from docs/plugins.md"
        assert inspect.getdoc(getattr(hookspecs, name))


@pytest.mark.parametrize(("stage", "name"), BUILTIN, ids=[f"{s}:{n}" for s, n in BUILTIN])
def test_builtin_plugin_documented(stage, name):
    spec = removalx.get_registry().get(stage, name)
    module = sys.modules[spec.module]
    assert module.__doc__ and len(module.__doc__.strip()) > 40, f"{spec.module} needs a module docstring"
    assert inspect.getdoc(spec.config), f"config of {name} needs a docstring"
    assert f"`{name}`" in DOCS, f"{stage} plugin {name!r} is not mentioned in docs/"


@pytest.mark.parametrize("recipe", sorted(builtin_recipes()))
def test_builtin_recipe_cites_a_source_and_is_documented(recipe):
    r = load_recipe(recipe)
    assert r.reference, f"recipe {recipe} must cite the paper table/section it reproduces"
    assert f"`{recipe}`" in DOCS, f"recipe {recipe} is not mentioned in docs/"


def test_every_package_is_installed_by_a_plain_install() -> None:
    """pyproject.toml lists its packages by hand: a new package missing there imports from the
    checkout (editable install) but is absent from a regular ``pip install .``."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {
        ".".join(("removalx_plugins" if p.parts[0] == "plugins" else p.parts[0], *p.parts[1:-1]))
        for top in ("removalx", "plugins")
        for p in (q.relative_to(ROOT) for q in (ROOT / top).rglob("__init__.py"))
    }
    assert found - listed == set(), "add these packages to [tool.setuptools] packages in pyproject.toml"
