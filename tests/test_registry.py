"""Plugin registration: entry points, third-party packages, bad registrations."""

from __future__ import annotations

import importlib.metadata as md
import types

import pytest
from pydantic import BaseModel

import removalx
from removalx.core.registry import PIPELINE_STAGES, Registry
from removalx.errors import PluginError, PluginNotFoundError
from removalx.testing import ToyClassifier, check_plugin, tiny_video


def test_builtins_come_from_entry_points():
    reg = removalx.get_registry()
    eps = {ep.value for ep in md.entry_points(group="removalx")}
    assert "removalx_plugins.segmentation.slic3d" in eps
    for stage in PIPELINE_STAGES:
        assert reg.names(stage), stage
    spec = reg.get("segmentation", "slic3d")
    assert spec.source == "removalx" and spec.module == "removalx_plugins.segmentation.slic3d"


def test_every_builtin_plugin_module_has_one_entry_point():
    import pathlib

    import removalx_plugins

    root = pathlib.Path(removalx_plugins.__file__).parent
    modules = {
        f"removalx_plugins.{p.parent.name}.{p.stem}"
        for p in root.glob("*/*.py")
        if not p.name.startswith("_") and p.parent.name != "machinery"
    }
    eps = {ep.value for ep in md.entry_points(group="removalx") if ep.value.startswith("removalx_plugins")}
    assert modules == eps


def test_unknown_plugin_lists_names():
    with pytest.raises(PluginNotFoundError, match="slic3d"):
        removalx.get_registry().get("segmentation", "slic")


def _module_with(hook_name: str, name: str, config: type, factory) -> types.ModuleType:
    mod = types.ModuleType(f"fake_{name}")

    @removalx.hookimpl(specname=hook_name)
    def register(registry):
        registry.add(name, config, factory)

    setattr(mod, hook_name, register)
    return mod


def test_local_registration_and_duplicates():
    from removalx_plugins.segmentation.grid3d import Grid3D, Grid3DConfig

    reg = Registry()
    reg.register_module(
        _module_with("removalx_register_segmenters", "g", Grid3DConfig, Grid3D), source="mine"
    )
    assert reg.names("segmentation") == ["g"] and reg.get("segmentation", "g").source == "mine"
    with pytest.raises(PluginError, match="registered twice"):
        reg.register_module(_module_with("removalx_register_segmenters", "g", Grid3DConfig, Grid3D))


def test_bad_registrations():
    reg = Registry()
    with pytest.raises(PluginError, match="pydantic"):
        reg.register_module(_module_with("removalx_register_segmenters", "x", dict, lambda c: c))

    class WithName(BaseModel):
        name: str = "x"

    with pytest.raises(PluginError, match="'name'"):
        Registry().register_module(_module_with("removalx_register_segmenters", "y", WithName, lambda c: c))


def _example_installed() -> bool:
    try:
        md.distribution("removalx-example-plugin")
        return True
    except md.PackageNotFoundError:
        return False


@pytest.mark.skipif(not _example_installed(), reason="docs/examples/removalx-example-plugin not installed")
def test_third_party_example_plugin(capsys):
    from removalx.cli import main

    assert main(["plugins", "--stage", "segmentation"]) == 0
    out = capsys.readouterr().out
    assert "time_slices" in out and "removalx-example-plugin" in out
    check_plugin("segmentation", "time_slices")
    a = removalx.Explainer.from_recipe(
        "loco_lv",
        overrides={"segmentation.name": "time_slices", "segmentation.frames_per_slice": 2},
        progress=False,
    ).explain(removalx.VideoClassifier(ToyClassifier()), tiny_video())
    assert a.meta["n_features"] == 2
    assert a.values[0].unique().numel() == 1  # one value per time slice
