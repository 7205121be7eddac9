"""Meta-tests: every hook and built-in plugin is documented; every recipe cites its source."""

from __future__ import annotations

import inspect
import pathlib
import sys

import pytest

import removalx
from removalx.core import hookspecs
from removalx.core.recipe import builtin_recipes, load_recipe
from removalx.core.registry import STAGES

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


def test_every_package_is_installed_by_a_plain_install(tmp_path: pathlib.Path) -> None:
    """A regular ``pip install .`` ships every module and data file of the checkout.

    setuptools discovers the packages (``[tool.setuptools.packages.find]``); this builds the
    wheel a plain install would install and compares its files with the source tree, so a
    module that only an editable install could import fails here.
    """
    import subprocess
    import zipfile

    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-v",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-2000:]
    # setuptools' warnings (e.g. an importable folder missing from the packages) are
    # ``SomethingWarning:`` lines framed by ``!!``; pip's and distutils' notes are not.
    warned = [line for line in log.splitlines() if "Warning:" in line or line.strip() == "!!"]
    assert warned == [], "\n".join(warned)
    (wheel,) = tmp_path.glob("removalx-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    expected = set()
    for top in ("removalx", "removalx_plugins"):
        for f in (ROOT / top).rglob("*"):
            if (
                f.is_file()
                and "__pycache__" not in f.parts
                and f.suffix in {".py", ".yaml", ".pt", ".json", ".gif", ".css", ".js", ".typed"}
            ):
                expected.add("/".join((top, *f.relative_to(ROOT / top).parts)))
    assert expected - shipped == set(), "the wheel of a plain install misses these files"
