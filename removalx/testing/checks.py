"""``check_plugin``: the conformance check of a stage plugin.

Like scikit-learn's ``check_estimator``: a plugin author calls
``check_plugin("segmentation", "my_segmenter")`` in their tests and gets a clear
``AssertionError`` naming the broken contract (docs/concepts.md).
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import BaseModel

from removalx.core.classifier import VideoClassifier
from removalx.core.registry import PIPELINE_STAGES, STAGES, Registry, get_registry
from removalx.core.types import Attribution, ChunkedPlan, FeatureSpace, PartitionSpace
from removalx.testing.data import ToyClassifier, tiny_video

__all__ = ["check_plugin"]

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


def _fail(stage: str, name: str, msg: str) -> AssertionError:
    return AssertionError(f"{stage} plugin {name!r}: {msg}")


def check_plugin(
    stage: str,
    name: str,
    config: dict[str, Any] | None = None,
    registry: Registry | None = None,
) -> None:
    """Check that plugin ``name`` of ``stage`` honours its stage's contract.

    Checks the registration (pydantic config that forbids unknown keys and is frozen,
    the stage interface), the shapes, dtypes and ranges it returns on a tiny clip,
    determinism for a fixed seed, and -- for pipeline stages -- a full explanation with the
    other stages at simple defaults.

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
    AssertionError
        Naming the plugin and the broken contract.
    """
    registry = registry or get_registry()
    spec = registry.get(stage, name)
    cfg_cls = spec.config
    if not issubclass(cfg_cls, BaseModel):
        raise _fail(stage, name, "config is not a pydantic model")
    if cfg_cls.model_config.get("extra") != "forbid" or not cfg_cls.model_config.get("frozen"):
        raise _fail(stage, name, "config must set extra='forbid' and frozen=True (subclass PluginConfig)")
    obj = spec.make(config)
    iface = STAGES[stage][1]
    if iface is not None and not isinstance(obj, iface):
        raise _fail(stage, name, f"factory returned {type(obj).__name__}, not a {iface.__name__}")
    if stage in PIPELINE_STAGES:
        _check_stage_object(stage, name, obj, spec.make, config)
        _check_in_pipeline(stage, name, config, registry)
    elif stage == "explainer":
        _check_explainer(name, obj)
    elif stage == "model" and not isinstance(obj, VideoClassifier):
        raise _fail(stage, name, "a model adapter must return a VideoClassifier")


def _clip() -> torch.Tensor:
    return tiny_video(frames=4, size=16)


def _check_stage_object(stage: str, name: str, obj: Any, make: Any, config: Any) -> None:
    video = _clip()
    t, h, w, _ = video.shape
    if stage == "segmentation":
        space = obj.segment(video, torch.Generator().manual_seed(0))
        if not isinstance(space, FeatureSpace):
            raise _fail(stage, name, "segment() must return a FeatureSpace")
        if space.n_features < 1 or tuple(space.shape) != (t, h, w):
            raise _fail(stage, name, f"space has n_features={space.n_features}, shape={space.shape}")
        z = torch.stack([torch.ones(space.n_features), torch.zeros(space.n_features)])
        keep = space.render(z, torch.arange(2))
        if keep.shape != (2, t, h, w) or keep.min() < 0 or keep.max() > 1:
            raise _fail(stage, name, f"render() gave shape {tuple(keep.shape)} / values outside [0, 1]")
        if not torch.allclose(keep[0], torch.ones_like(keep[0])):
            raise _fail(stage, name, "render(all ones) must keep every pixel")
        if space.expand(torch.zeros(space.n_features)).shape != (t, h, w):
            raise _fail(stage, name, "expand() must return [T, H, W]")
        again = make(config).segment(video, torch.Generator().manual_seed(0))
        if again.n_features != space.n_features:
            raise _fail(stage, name, "not deterministic for a fixed seed")
    elif stage == "feature_selection":
        cap = obj.max_samples(6)
        n = 10 if cap is None or cap > 10 else None  # as `fixed` sample selection asks
        plans = [obj.plan(6, n, torch.Generator().manual_seed(0)) for _ in range(2)]
        if not all(isinstance(p, ChunkedPlan) for p in plans):
            raise _fail(stage, name, "plan() must return a SamplePlan (or another ChunkedPlan)")
        plans = [p.materialize() for p in plans]
        for p in plans:
            if p.z.dim() != 2 or p.z.shape[1] != 6:
                raise _fail(stage, name, "plan() must return a SamplePlan with Z of shape [S, F]")
        if not torch.equal(plans[0].z, plans[1].z):
            raise _fail(stage, name, "plan() is not deterministic for a fixed generator seed")
    elif stage == "removal":
        halves = torch.zeros(t, h, w, dtype=torch.long)
        halves[:, h // 2 :] = 1
        space = PartitionSpace(halves)  # two features: top and bottom halves
        obj.prepare(video, space, 0)
        keep = torch.ones(2, t, h, w)
        keep[1, :, : h // 2] = 0
        out = obj.apply(video, keep, torch.arange(2))
        if out.shape != (2, *video.shape):
            raise _fail(stage, name, f"apply() gave shape {tuple(out.shape)}")
        if not torch.allclose(out[0], video, atol=1e-6):
            raise _fail(stage, name, "keep = 1 must leave the clip unchanged")
        if not torch.isfinite(out).all():
            raise _fail(stage, name, "apply() produced NaN")
    elif stage == "behavior":
        y = obj.score(torch.randn(3, 5), 2)
        if y.shape != (3,):
            raise _fail(stage, name, f"score() gave shape {tuple(y.shape)}, expected [3]")
    elif stage == "visualization":
        attr = Attribution(values=torch.randn(t, h, w), target=0)
        frames = obj.frames(video, attr)
        if frames.shape != (t, h, w, 3) or frames.dtype != torch.uint8:
            raise _fail(stage, name, "frames() must return uint8 [T, H, W, 3]")


def _check_in_pipeline(stage: str, name: str, config: Any, registry: Registry) -> None:
    from removalx.pipeline import Explainer

    recipe = {k: dict(v) for k, v in _DEFAULT_RECIPE.items()}
    recipe[stage] = {"name": name, **(config or {})}
    if stage == "feature_selection" and name in ("leave_one_out", "only_one"):
        recipe["sample_selection"] = {"name": "exhaustive"}
    model = VideoClassifier(ToyClassifier())
    video = _clip()
    ex = Explainer.from_recipe(recipe, seed=0, registry=registry, progress=False)
    a1 = ex.explain_clip(model, video)
    a2 = ex.explain_clip(model, video, batch_size=3)
    if a1.values.shape != video.shape[:3]:
        raise _fail(stage, name, f"pipeline attribution has shape {tuple(a1.values.shape)}")
    if not torch.isfinite(a1.values).all():
        raise _fail(stage, name, "pipeline attribution has NaN")
    if not torch.allclose(a1.values, a2.values, atol=1e-5, rtol=1e-4):
        raise _fail(stage, name, "attribution changes with the batch size (same seed)")


def _check_explainer(name: str, obj: Any) -> None:
    model = VideoClassifier(ToyClassifier())
    video = _clip()
    attr = obj.explain(model, video, 0, torch.Generator().manual_seed(0))
    if not isinstance(attr, Attribution) or attr.values.shape != video.shape[:3]:
        raise _fail("explainer", name, "explain() must return an Attribution with values [T, H, W]")
