"""``check_plugin``: the conformance check of a stage plugin.

Like scikit-learn's ``check_estimator``: a plugin author calls
``check_plugin("segmentation", "my_segmenter")`` in their tests and gets a
:class:`PluginCheckError` (an ``AssertionError``) naming the failed check and what was
wrong (docs/plugins.md). The checks of each stage live in ``check_segmenter``,
``check_removal`` and ``check_hand_cases``; :mod:`removalx.testing.determinism` runs a stage
twice while torch's global generator moves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from pydantic import BaseModel

from removalx.core.classifier import VideoClassifier
from removalx.core.compatibility import SPACE_READERS, segmentations_providing
from removalx.core.registry import PIPELINE_STAGES, STAGES, PluginSpec, Registry, get_registry
from removalx.core.stages import space_closure
from removalx.core.types import Attribution, ChunkedPlan
from removalx.testing.check_hand_cases import check_behavior, check_summary
from removalx.testing.check_removal import check_removal
from removalx.testing.check_report import PluginCheckError, Reporter
from removalx.testing.check_segmenter import check_segmenter
from removalx.testing.data import ToyClassifier, tiny_video
from removalx.testing.determinism import difference, run_twice

__all__ = ["PluginCheckError", "check_plugin"]

# Stages a check runs in a full pipeline, with the other stages at these defaults.
_DEFAULT_RECIPE: dict[str, dict[str, Any]] = {
    "segmentation": {"name": "grid3d", "cells": [2, 2, 2]},
    "feature_selection": {"name": "bernoulli", "p": 0.5},
    "sample_selection": {"name": "fixed", "n_samples": 8},
    "removal": {"name": "constant"},
    "behavior": {"name": "probability"},
    "summary": {"name": "linear"},
    "visualization": {"name": "heatmap"},
}


def check_plugin(
    stage: str,
    name: str,
    config: dict[str, Any] | None = None,
    registry: Registry | None = None,
) -> None:
    """Check that plugin ``name`` of ``stage`` honours its stage's contract.

    Checks the registration (pydantic config that forbids unknown keys and is frozen, the
    stage interface) and, on a tiny clip: shapes, dtypes and ranges; determinism (two runs
    with the same seed, torch's global generator seeded and drawn from differently before
    each, must agree exactly); for segmenters, no empty or out-of-range feature, every
    pixel covered (unless declared otherwise) and what ``space_provides`` declares; for
    removals, values in [0, 1], kept pixels unchanged and the same output whatever the
    batch; for behaviors and summaries, hand cases with known answers; and -- for pipeline
    stages -- a full explanation with the other stages at simple defaults, for batch sizes
    1 and 3 (docs/plugins.md, "Testing a plugin").

    Parameters
    ----------
    stage : str
        One of ``segmentation``, ``feature_selection``, ``sample_selection``, ``removal``,
        ``behavior``, ``summary``, ``visualization``, ``explainer``, ``metric``, ``model``.
    name : str
        The plugin's registered name.
    config : dict, optional
        Config to check with (default: the plugin's defaults).
    registry : Registry, optional
        Default: every installed plugin.

    Raises
    ------
    PluginCheckError
        A :class:`~removalx.errors.PluginError` and ``AssertionError`` naming the plugin,
        the failed check and what was wrong (e.g. the largest difference or range seen).
    """
    registry = registry or get_registry()
    spec = registry.get(stage, name)
    with torch.random.fork_rng(devices=[]):  # leaves torch's global generator as it was
        _check(stage, name, config, registry, spec)


def _check(
    stage: str, name: str, config: dict[str, Any] | None, registry: Registry, spec: PluginSpec
) -> None:
    report = Reporter(stage, name)
    cfg_cls = spec.config
    if not issubclass(cfg_cls, BaseModel):
        raise report("config", "config is not a pydantic model", "Subclass removalx.plugin.PluginConfig.")
    if cfg_cls.model_config.get("extra") != "forbid" or not cfg_cls.model_config.get("frozen"):
        raise report("config", "config must set extra='forbid' and frozen=True", "Subclass PluginConfig.")
    obj = spec.make(config)
    iface = STAGES[stage][1]
    if iface is not None and not isinstance(obj, iface):
        raise report("interface", f"factory returned {type(obj).__name__}, not a {iface.__name__}")
    if stage in PIPELINE_STAGES:
        _check_stage_object(stage, obj, lambda: spec.make(config), report)
        _check_in_pipeline(stage, name, config, registry, report)
    elif stage == "explainer":
        _check_explainer(obj, report)
    elif stage == "model" and not isinstance(obj, VideoClassifier):
        raise report("interface", "a model adapter must return a VideoClassifier")


def _clip() -> torch.Tensor:
    return tiny_video(frames=4, size=16)


def _bound(make: Callable[[], Any]) -> Callable[[], Any]:
    """``make`` followed by ``bind_model`` with the toy model, as the pipeline does."""
    model = VideoClassifier(ToyClassifier())

    def made() -> Any:
        obj = make()
        bind = getattr(obj, "bind_model", None)
        if callable(bind):
            bind(model)
        return obj

    return made


def _check_stage_object(stage: str, obj: Any, make: Callable[[], Any], report: Reporter) -> None:
    video = _clip()
    if stage in ("segmentation", "removal"):
        make = _bound(make)
    if stage == "segmentation":
        check_segmenter(make(), make, video, report)
    elif stage == "feature_selection":
        _check_feature_selection(make, report)
    elif stage == "removal":
        check_removal(make, video, report)
    elif stage == "behavior":
        check_behavior(make, report)
    elif stage == "summary":
        check_summary(make, video, report)
    elif stage == "visualization":
        t, h, w, _ = video.shape
        attr = Attribution(values=torch.randn(t, h, w, generator=torch.Generator().manual_seed(0)), target=0)
        frames, again = run_twice(lambda: make().frames(video, attr))
        if frames.shape != (t, h, w, 3) or frames.dtype != torch.uint8:
            raise report("shape", "frames() must return uint8 [T, H, W, 3]")
        diff = difference(frames, again)
        if diff is not None:
            raise report("determinism", f"two runs differ ({diff}) while torch's global generator moved")


def _check_feature_selection(make: Callable[[], Any], report: Reporter) -> None:
    cap = make().max_samples(6)
    n = 10 if cap is None or cap > 10 else None  # as `fixed` sample selection asks

    def plan() -> Any:
        return make().plan(6, n, torch.Generator().manual_seed(0))

    plans = run_twice(plan)
    if not all(isinstance(p, ChunkedPlan) for p in plans):
        raise report("plan", "plan() must return a SamplePlan (or another ChunkedPlan)")
    rows = [p.materialize() for p in plans]
    for p in rows:
        if p.z.dim() != 2 or p.z.shape[1] != 6:
            raise report("plan", "plan() must return a SamplePlan with Z of shape [S, F]")
    diff = difference((rows[0].z, rows[0].weights), (rows[1].z, rows[1].weights))
    if diff is not None:
        raise report(
            "determinism",
            f"plan() is not deterministic for a fixed generator seed ({diff}) while torch's global "
            "generator moved",
            "Draw random numbers only from the generator plan() is given.",
        )


def _fit_segmentation(recipe: dict[str, dict[str, Any]], stage: str, name: str, registry: Registry) -> None:
    """Swap the default grid for a segmentation that gives what the checked stage requires."""
    if stage not in SPACE_READERS:
        return
    required = frozenset(getattr(registry.get(stage, name).factory, "space_requires", frozenset()) or ())
    if required <= space_closure(frozenset({"partition"})):
        return
    fits = segmentations_providing(required, registry)
    if fits:
        recipe["segmentation"] = {"name": fits[0]}


def _check_in_pipeline(stage: str, name: str, config: Any, registry: Registry, report: Reporter) -> None:
    from removalx.pipeline import Explainer

    recipe = {k: dict(v) for k, v in _DEFAULT_RECIPE.items()}
    recipe[stage] = {"name": name, **(config or {})}
    _fit_segmentation(recipe, stage, name, registry)
    if stage == "feature_selection" and name in ("leave_one_out", "only_one"):
        recipe["sample_selection"] = {"name": "exhaustive"}
    model = VideoClassifier(ToyClassifier())
    video = _clip()
    ex = Explainer.from_recipe(recipe, seed=0, registry=registry, progress=False)
    a1, again = run_twice(lambda: ex.explain_clip(model, video).values)
    a2 = ex.explain_clip(model, video, batch_size=3)
    if a1.shape != video.shape[:3]:
        raise report("pipeline", f"pipeline attribution has shape {tuple(a1.shape)}")
    if not torch.isfinite(a1).all():
        raise report("pipeline", "pipeline attribution has NaN")
    diff = difference(a1, again)
    if diff is not None:
        raise report(
            "determinism",
            f"two explanations with seed 0 differ ({diff}) while torch's global generator moved",
        )
    if not torch.allclose(a1, a2.values, atol=1e-5, rtol=1e-4):
        raise report("batch size", "attribution changes with the batch size (same seed)")


def _check_explainer(obj: Any, report: Reporter) -> None:
    model = VideoClassifier(ToyClassifier())
    video = _clip()
    attr = obj.explain(model, video, 0, torch.Generator().manual_seed(0))
    if not isinstance(attr, Attribution) or attr.values.shape != video.shape[:3]:
        raise report("shape", "explain() must return an Attribution with values [T, H, W]")
