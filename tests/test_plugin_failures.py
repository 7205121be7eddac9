"""A broken third-party plugin is reported (warning, `removalx plugins`, errors naming it), never fatal.

Each test installs fake distributions without pip: a ``*.dist-info`` folder (METADATA and
entry_points.txt) plus the plugin modules in a folder put on ``sys.path``.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
import types
import warnings
from pathlib import Path

import pytest
import torch

import removalx
from removalx.cli import EXIT_INPUT, EXIT_OK, main
from removalx.core.recipe import load_recipe
from removalx.core.registry import (
    STAGES,
    STRICT_ENV,
    PluginFailure,
    Registry,
    get_registry,
    names_from_entry_point,
    reset_registry,
)
from removalx.errors import (
    PluginError,
    PluginLoadWarning,
    PluginNotFoundError,
    PluginUnavailableError,
)
from removalx.testing import tiny_video
from removalx.video.io import write_gif

PREFIX = "rxfail_"  # every fake plugin module starts with this (removed from sys.modules after each test)

IMPORT_ERROR_MODULE = """
import rxfail_missing_dependency  # not installed: the module fails to import
"""

PARTIAL_MODULE = """
from removalx import hookimpl
from removalx_plugins.removal.constant import Constant, ConstantConfig
from removalx_plugins.segmentation.grid3d import Grid3D, Grid3DConfig

@hookimpl
def removalx_register_segmenters(registry):
    registry.add("rxfail_partial_seg", Grid3DConfig, Grid3D)

@hookimpl
def removalx_register_removals(registry):
    registry.add("rxfail_partial_rm", ConstantConfig, Constant)
    raise RuntimeError("boom after registering rxfail_partial_rm")
"""

GOOD_MODULE = """
from removalx import hookimpl
from removalx_plugins.segmentation.grid3d import Grid3D, Grid3DConfig

@hookimpl
def removalx_register_segmenters(registry):
    registry.add("rxfail_good", Grid3DConfig, Grid3D)
"""

DUPLICATE_MODULE = """
from removalx import hookimpl
from removalx_plugins.segmentation.grid3d import Grid3D, Grid3DConfig

@hookimpl
def removalx_register_segmenters(registry):
    registry.add("rxfail_dup_extra", Grid3DConfig, Grid3D)
    registry.add("slic3d", Grid3DConfig, Grid3D)  # the built-in's name
"""

MODEL_FILE = """
from removalx.testing import ToyClassifier

def make():
    return ToyClassifier(n_classes=3)
"""


@pytest.fixture(autouse=True)
def clean_registry(monkeypatch):
    """A fresh registry and no strict mode for each test, and a clean registry for the next tests."""
    monkeypatch.delenv(STRICT_ENV, raising=False)
    reset_registry()
    yield
    reset_registry()
    for name in [m for m in sys.modules if m.startswith(PREFIX)]:
        del sys.modules[name]


@pytest.fixture(scope="module")
def baseline() -> dict[str, list[str]]:
    """Names of every stage with only the really installed plugins."""
    reg = Registry(strict=True)
    reg.load_entry_points()
    return {stage: reg.names(stage) for stage in STAGES}


def install(
    site: Path,
    monkeypatch: pytest.MonkeyPatch,
    dist: str,
    entry_points: dict[str, str],
    modules: dict[str, str],
) -> None:
    """Make ``dist`` look installed: dist-info with ``entry_points`` in group removalx, plus ``modules``."""
    if str(site) not in sys.path:
        site.mkdir(parents=True, exist_ok=True)
        monkeypatch.syspath_prepend(str(site))
    info = site / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    lines = "".join(f"{name} = {value}\n" for name, value in entry_points.items())
    (info / "entry_points.txt").write_text(f"[removalx]\n{lines}")
    for module, source in modules.items():
        (site / f"{module}.py").write_text(textwrap.dedent(source))


def load_with_warnings() -> tuple[Registry, list[str]]:
    """``get_registry()`` and the texts of the PluginLoadWarnings it emitted."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reg = get_registry()
    return reg, [str(w.message) for w in caught if issubclass(w.category, PluginLoadWarning)]


def install_import_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install(
        tmp_path / "site",
        monkeypatch,
        "rx-broken-import",
        {"segmentation-brokenseg": "rxfail_import_mod"},
        {"rxfail_import_mod": IMPORT_ERROR_MODULE},
    )


IMPORT_FAILURE = PluginFailure(
    distribution="rx-broken-import",
    entry_point="segmentation-brokenseg",
    value="rxfail_import_mod",
    phase="import",
    error_type="ModuleNotFoundError",
    message="No module named 'rxfail_missing_dependency'",
    provides=(("segmentation", "brokenseg"),),
)


def test_entry_point_names_map_to_stages():
    assert names_from_entry_point("segmentation-slic3d") == (("segmentation", "slic3d"),)
    assert names_from_entry_point("selection-fixed") == (
        ("feature_selection", "fixed"),
        ("sample_selection", "fixed"),
    )
    assert names_from_entry_point("feature_selection-fixed") == (("feature_selection", "fixed"),)
    assert names_from_entry_point("sample-selection-only_one") == (("sample_selection", "only_one"),)
    assert names_from_entry_point("explainers-grad_cam") == (("explainer", "grad_cam"),)
    assert names_from_entry_point("metrics-saliency") == (("metric", "saliency"),)
    assert names_from_entry_point("models-zoo_models") == (("model", "zoo_models"),)
    assert names_from_entry_point("removal-blur") == (("removal", "blur"),)
    assert names_from_entry_point("time_slices") == ()
    assert names_from_entry_point("segmentation-") == ()
    assert names_from_entry_point("colour-red") == ()


def test_import_error_is_one_warning_and_the_rest_works(tmp_path, monkeypatch, capsys, baseline):
    install_import_error(tmp_path, monkeypatch)
    reg, texts = load_with_warnings()
    assert len(texts) == 1
    assert "'rx-broken-import'" in texts[0]
    assert "'segmentation-brokenseg = rxfail_import_mod'" in texts[0]
    assert "ModuleNotFoundError: No module named 'rxfail_missing_dependency'" in texts[0]
    assert capsys.readouterr().err == ""  # recorded as a warning, nothing printed besides
    assert reg.failures == [IMPORT_FAILURE]
    assert {stage: reg.names(stage) for stage in STAGES} == baseline
    assert load_recipe("lime3d").segmentation.name == "slic3d"  # type: ignore[attr-defined]

    assert main(["plugins"]) == EXIT_OK
    out = capsys.readouterr().out
    listed, _, failed = out.partition("\nfailed to load:\n")
    assert "slic3d" in listed and "brokenseg" not in listed
    assert "segmentation-brokenseg = rxfail_import_mod [rx-broken-import]" in failed
    assert "failed to import: ModuleNotFoundError: No module named 'rxfail_missing_dependency'" in failed
    assert "provides: segmentation brokenseg" in failed

    assert main(["plugins", "--json"]) == EXIT_OK
    rows = json.loads(capsys.readouterr().out)
    ok = [r for r in rows if r["status"] == "ok"]
    bad = [r for r in rows if r["status"] == "failed"]
    assert sorted((r["stage"], r["name"]) for r in ok) == sorted(
        (stage, name) for stage, names in baseline.items() for name in names
    )
    assert len(bad) == 1
    assert bad[0]["stage"] is None and bad[0]["name"] is None and bad[0]["fields"] == {}
    assert bad[0]["source"] == bad[0]["distribution"] == "rx-broken-import"
    assert bad[0]["entry_point"] == "segmentation-brokenseg" and bad[0]["module"] == "rxfail_import_mod"
    assert bad[0]["error_type"] == "ModuleNotFoundError" and bad[0]["phase"] == "import"
    assert bad[0]["provides"] == [{"stage": "segmentation", "name": "brokenseg"}]

    # --stage keeps failures that provide that stage and drops the others
    assert main(["plugins", "--stage", "removal"]) == EXIT_OK
    assert "failed to load" not in capsys.readouterr().out
    assert main(["plugins", "--stage", "segmentation"]) == EXIT_OK
    assert "segmentation-brokenseg" in capsys.readouterr().out


def test_raising_hook_rolls_back_its_registrations(tmp_path, monkeypatch, baseline):
    site = tmp_path / "site"
    install(
        site,
        monkeypatch,
        "rx-partial",
        {"rxpartial": "rxfail_partial_mod"},
        {"rxfail_partial_mod": PARTIAL_MODULE},
    )
    install(
        site,
        monkeypatch,
        "rx-good",
        {"segmentation-rxfail_good": "rxfail_good_mod"},
        {"rxfail_good_mod": GOOD_MODULE},
    )
    reg, texts = load_with_warnings()
    assert len(texts) == 1
    assert "'rx-partial'" in texts[0] and "'rxpartial = rxfail_partial_mod'" in texts[0]
    assert "RuntimeError: boom after registering rxfail_partial_rm" in texts[0]
    assert reg.failures == [
        PluginFailure(
            distribution="rx-partial",
            entry_point="rxpartial",
            value="rxfail_partial_mod",
            phase="hook",
            error_type="RuntimeError",
            message="boom after registering rxfail_partial_rm",
            provides=(("segmentation", "rxfail_partial_seg"), ("removal", "rxfail_partial_rm")),
        )
    ]
    # nothing of the failed plugin stays, not even the stage whose hook succeeded
    assert reg.names("removal") == baseline["removal"]
    assert reg.names("segmentation") == sorted([*baseline["segmentation"], "rxfail_good"])
    assert reg.pm.get_plugin("rxpartial") is None
    # the good third-party plugin works and keeps its distribution name
    good = reg.get("segmentation", "rxfail_good")
    assert good.source == "rx-good" and good.module == "rxfail_good_mod"
    with pytest.raises(PluginUnavailableError, match="failed to load") as err:
        reg.get("segmentation", "rxfail_partial_seg")
    assert "rx-partial" in str(err.value) and "boom after registering" in str(err.value)


def test_duplicate_name_keeps_the_builtin(tmp_path, monkeypatch, capsys):
    # "aaa-..." sorts before "removalx": the built-ins still load first and keep their names
    install(
        tmp_path / "site",
        monkeypatch,
        "aaa-rx-dup",
        {"rxdup": "rxfail_dup_mod"},
        {"rxfail_dup_mod": DUPLICATE_MODULE},
    )
    reg, texts = load_with_warnings()
    assert len(texts) == 1
    assert "'aaa-rx-dup'" in texts[0] and "'rxdup = rxfail_dup_mod'" in texts[0]
    assert "segmentation plugin 'slic3d' is registered twice" in texts[0]
    [failure] = reg.failures
    assert failure.phase == "duplicate" and failure.error_type == "PluginError"
    assert failure.provides == (("segmentation", "rxfail_dup_extra"), ("segmentation", "slic3d"))
    slic = reg.get("segmentation", "slic3d")
    assert slic.source == "removalx" and slic.module == "removalx_plugins.segmentation.slic3d"
    assert "rxfail_dup_extra" not in reg.names("segmentation")
    with pytest.raises(PluginUnavailableError, match="registered twice"):
        reg.get("segmentation", "rxfail_dup_extra")

    # `recipes list` and `explain` with the default recipe (slic3d) still work
    assert main(["recipes", "list"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "lime3d" in out and "unusable" not in out
    gif = write_gif((tiny_video(frames=4, size=16) * 255).round().to(torch.uint8), tmp_path / "c.gif", fps=4)
    model = tmp_path / "rxfail_model.py"
    model.write_text(MODEL_FILE)
    rc = main(
        [
            "explain",
            str(gif),
            "--model",
            f"python:{model}:make",
            "--frames",
            "4",
            "--set",
            "sample_selection.n_samples=8",
            "--out",
            str(tmp_path / "out"),
            "--quiet",
        ]
    )
    assert rc == EXIT_OK, capsys.readouterr().err
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["recipe"]["segmentation"]["name"] == "slic3d" and summary["n_forward"] == 9


def test_recipe_naming_a_failed_plugin_says_why(tmp_path, monkeypatch, capsys):
    install_import_error(tmp_path, monkeypatch)
    install(
        tmp_path / "site",
        monkeypatch,
        "rx-broken-sel",
        {"selection-rxsel": "rxfail_sel_mod"},
        {"rxfail_sel_mod": "raise ValueError('bad selection plugin ' + 'x' * 1000)\n"},
    )
    reg, texts = load_with_warnings()
    assert len(texts) == 2
    with pytest.raises(PluginNotFoundError) as err:
        load_recipe("lime3d", overrides={"segmentation.name": "brokenseg"})
    text = str(err.value)
    assert "'segmentation.name'" in text and "'brokenseg' is installed but failed to load" in text
    assert "rx-broken-import" in text and "segmentation-brokenseg = rxfail_import_mod" in text
    assert "ModuleNotFoundError: No module named 'rxfail_missing_dependency'" in text
    assert "Unknown" not in text
    # selection-<name> covers both selection stages; the long message is truncated
    for stage in ("feature_selection", "sample_selection"):
        with pytest.raises(PluginUnavailableError) as err:
            reg.get(stage, "rxsel")
        assert "ValueError: bad selection plugin xxx" in str(err.value)
        assert "x" * 400 not in str(err.value)
    # a name no failed entry point claims: the usual error, plus a pointer to the failures
    with pytest.raises(PluginNotFoundError) as err:
        reg.get("segmentation", "nosuch")
    assert not isinstance(err.value, PluginUnavailableError)
    assert "Unknown segmentation plugin 'nosuch'" in str(err.value)
    assert "2 installed plugins failed to load" in str(err.value)
    # the CLI: exit code 3 and the reason
    assert main(["recipes", "show", "lime3d", "--set", "segmentation.name=brokenseg"]) == EXIT_INPUT
    assert "failed to load" in capsys.readouterr().err


def test_unprefixed_entry_point_matches_by_name(tmp_path, monkeypatch):
    install(
        tmp_path / "site",
        monkeypatch,
        "rx-time",
        {"rxfail_slices": "rxfail_slices_mod"},
        {"rxfail_slices_mod": IMPORT_ERROR_MODULE},
    )
    reg, _ = load_with_warnings()
    with pytest.raises(PluginUnavailableError, match="entry point of that name failed to load"):
        reg.get("segmentation", "rxfail_slices")


def test_strict_mode_from_environment(tmp_path, monkeypatch, capsys):
    install_import_error(tmp_path, monkeypatch)
    monkeypatch.setenv(STRICT_ENV, "1")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(PluginError) as err:
            get_registry()
    assert not [w for w in caught if issubclass(w.category, PluginLoadWarning)]
    text = str(err.value)
    assert "rx-broken-import" in text and "segmentation-brokenseg = rxfail_import_mod" in text
    assert "ModuleNotFoundError" in text
    assert main(["plugins"]) == EXIT_INPUT
    assert "segmentation-brokenseg" in capsys.readouterr().err
    assert main(["zoo", "list"]) == EXIT_INPUT  # strict mode fails every command
    assert "rx-broken-import" in capsys.readouterr().err
    monkeypatch.setenv(STRICT_ENV, "0")
    with pytest.warns(PluginLoadWarning):
        assert main(["plugins"]) == EXIT_OK


def test_strict_mode_from_cli_flag(tmp_path, monkeypatch, capsys):
    install_import_error(tmp_path, monkeypatch)
    with pytest.warns(PluginLoadWarning):
        assert main(["recipes", "list"]) == EXIT_OK  # lenient: loaded with a warning
    capsys.readouterr()
    # the flag also applies to a registry that was already loaded leniently
    assert main(["--strict-plugins", "plugins"]) == EXIT_INPUT
    err = capsys.readouterr().err
    assert "removalx: error:" in err and "rx-broken-import" in err
    assert "segmentation-brokenseg = rxfail_import_mod" in err and "ModuleNotFoundError" in err
    assert STRICT_ENV not in os.environ  # the flag lasts one command
    reset_registry()
    with warnings.catch_warnings():
        warnings.simplefilter("error", PluginLoadWarning)  # strict: raises before any warning
        assert main(["--strict-plugins", "recipes", "list"]) == EXIT_INPUT
    with pytest.warns(PluginLoadWarning):
        assert main(["plugins"]) == EXIT_OK


def test_strict_mode_is_quiet_without_failures(monkeypatch, baseline):
    monkeypatch.setenv(STRICT_ENV, "1")
    reg = get_registry()
    assert reg.failures == []
    assert {stage: reg.names(stage) for stage in STAGES} == baseline
    assert main(["--strict-plugins", "plugins", "--stage", "summary"]) == EXIT_OK


def test_direct_registration_still_raises():
    from removalx_plugins.segmentation.grid3d import Grid3D, Grid3DConfig

    reg = Registry()
    reg.load_entry_points()
    module = types.ModuleType("rxfail_direct")

    @removalx.hookimpl
    def removalx_register_segmenters(registry):
        registry.add("rxfail_direct_ok", Grid3DConfig, Grid3D)
        registry.add("grid3d", Grid3DConfig, Grid3D)

    module.removalx_register_segmenters = removalx_register_segmenters  # type: ignore[attr-defined]
    with pytest.raises(PluginError, match="registered twice"):
        reg.register_module(module)
    assert "rxfail_direct_ok" not in reg.names("segmentation")
    assert not reg.pm.is_registered(module)
    assert reg.get("segmentation", "grid3d").module == "removalx_plugins.segmentation.grid3d"
    assert reg.failures == []
