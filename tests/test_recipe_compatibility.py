"""``recipes validate`` refuses recipes whose stages do not fit together (issue 24 section 8).

The oracle is the pipeline itself: for every built-in segmenter, ``mean`` removal is refused
at validation exactly when running the recipe fails.
"""

from __future__ import annotations

import types

import pytest
import torch
import yaml

import removalx
from removalx.cli import EXIT_INPUT, EXIT_OK, main
from removalx.core.compatibility import check_stages_fit, stage_fit_problems
from removalx.core.hookspecs import hookimpl
from removalx.core.recipe import builtin_recipes, load_recipe
from removalx.core.registry import Registry
from removalx.core.stages import PluginConfig, Segmenter
from removalx.core.types import PartitionSpace
from removalx.errors import ConfigError, RecipeError
from removalx.testing import ToyClassifier, tiny_video

pytestmark = pytest.mark.usefixtures("rx_one_thread")

BASE = {
    "feature_selection": {"name": "bernoulli", "p": 0.5},
    "sample_selection": {"name": "fixed", "n_samples": 4},
    "summary": {"name": "linear"},
}
SEGMENTERS = {
    "grid3d": {"name": "grid3d", "cells": [2, 2, 2]},
    "slic3d": {"name": "slic3d", "n_segments": 8},
    "frames2d": {"name": "frames2d", "n_segments": 4},
    "sliding_window": {"name": "sliding_window", "window": [2, 8, 8], "stride": [2, 8, 8]},
    "soft_grid": {"name": "soft_grid", "cells": [2, 2, 2]},
    "flow_tubes": {"name": "flow_tubes", "stride": 8, "mask_size": [8, 8]},
}


def _recipe(segmentation, removal="mean", **stages):
    return {**BASE, "segmentation": segmentation, "removal": {"name": removal}, **stages}


def test_mean_with_flow_tubes_fails_validation_with_the_reason(tmp_path, capsys):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(_recipe(SEGMENTERS["flow_tubes"])))
    assert main(["recipes", "validate", str(path)]) == EXIT_INPUT
    err = capsys.readouterr().err
    assert "removal 'mean' needs a feature space with partition" in err
    assert "segmentation 'flow_tubes' provides only: hard_masks, nonempty" in err
    assert "(frames2d, grid3d, slic3d)" in err  # the segmentations that would fit
    others = err.split("or another removal (")[1].split(")")[0].split(", ")
    assert {"blur", "constant", "noise"} <= set(others) and "mean" not in others
    path.write_text(yaml.safe_dump(_recipe(SEGMENTERS["grid3d"])))
    assert main(["recipes", "validate", str(path)]) == EXIT_OK


@pytest.mark.parametrize("seg", sorted(SEGMENTERS))
def test_validation_agrees_with_the_pipeline(seg):
    """Refused at validation <=> the pipeline fails (here: mean removal needs labels)."""
    recipe = load_recipe(_recipe(SEGMENTERS[seg]))
    refused = bool(stage_fit_problems(recipe))
    ex = removalx.Explainer.from_recipe(recipe, progress=False)
    model = removalx.VideoClassifier(ToyClassifier())
    try:
        ex.explain_clip(model, tiny_video(frames=4, size=16))
        ran = True
    except ConfigError as exc:
        assert "partition" in str(exc)
        ran = False
    assert refused == (not ran), seg
    assert refused == (seg in ("sliding_window", "soft_grid", "flow_tubes"))


@pytest.mark.parametrize("name", sorted(builtin_recipes()))
def test_every_builtin_recipe_fits(name):
    assert stage_fit_problems(load_recipe(name)) == []


def test_adaptive_sampling_needs_a_summary_that_estimates_its_error():
    recipe = load_recipe(
        _recipe(
            SEGMENTERS["grid3d"], "constant", sample_selection={"name": "adaptive"}, summary={"name": "value"}
        )
    )
    with pytest.raises(RecipeError, match=r"summary 'value' does not estimate them") as info:
        check_stages_fit(recipe)
    assert "(linear, mask_mean, shapley)" in str(info.value)
    fine = load_recipe(_recipe(SEGMENTERS["grid3d"], "constant", sample_selection={"name": "adaptive"}))
    check_stages_fit(fine)


def test_every_problem_is_listed():
    recipe = load_recipe(
        _recipe(
            SEGMENTERS["soft_grid"], sample_selection={"name": "adaptive"}, summary={"name": "difference"}
        )
    )
    problems = stage_fit_problems(recipe)
    assert len(problems) == 2
    assert problems[0].startswith("removal 'mean'") and problems[1].startswith("sample_selection 'adaptive'")


def test_explainer_recipes_have_no_stage_problems():
    recipe = load_recipe("grad_cam")
    assert not recipe.is_pipeline and stage_fit_problems(recipe) == []


# -- third-party plugins without declarations keep working -----------------------------------
class NoConfig(PluginConfig):
    """No options."""


class Undeclared(Segmenter):
    """A partition that declares nothing."""

    def __init__(self, config: NoConfig) -> None:
        pass

    def segment(self, video, generator):
        t, h, w = video.shape[:3]
        return PartitionSpace((torch.arange(t) // 2).view(t, 1, 1).expand(t, h, w).contiguous())


def _registry(factory) -> Registry:
    mod = types.ModuleType("local_undeclared")

    def removalx_register_segmenters(registry):
        registry.add("undeclared", NoConfig, factory)

    mod.removalx_register_segmenters = hookimpl(removalx_register_segmenters)
    reg = Registry()
    reg.load_entry_points()
    reg.register_module(mod)
    return reg


@pytest.mark.parametrize(
    "factory", [Undeclared, lambda config: Undeclared(config)], ids=["class", "function"]
)
def test_undeclared_segmenter_is_never_refused(factory):
    reg = _registry(factory)
    recipe = load_recipe(_recipe({"name": "undeclared"}), registry=reg)
    assert stage_fit_problems(recipe, reg) == []
    ex = removalx.Explainer.from_recipe(recipe, registry=reg, progress=False)
    a = ex.explain_clip(removalx.VideoClassifier(ToyClassifier()), tiny_video(frames=4, size=16))
    assert a.values.shape == (4, 16, 16)
