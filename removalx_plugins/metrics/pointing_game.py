"""``spatial_pointing`` (S-PT) and ``temporal_pointing`` (T-PT) games.

ECCV-W video attribution study, Sec. 4 "Evaluation Metrics": S-PT records a hit when a circle
of 7 pixels around a frame's maximum point meets the ground-truth region; T-PT records a hit
when the most important frame lies in the ground-truth segment. Ground truth comes from the
context: ``evidence=bool[T, H, W]`` (S-PT; T-PT falls back to the frames where it is
non-empty) and ``evidence_frames=[...]`` (T-PT), as produced by ``removalx.zoo.data``.
Higher is better; no forward pass.

S-PT's ``value`` is the clip's hit rate; the result also carries the per-frame hits and
``pooling`` (default ``frames``: the study pools the frames of the whole dataset), which
:func:`removalx.metrics.pooled_hit_rate` applies to the per-clip results of a dataset.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field
from torch import Tensor

from removalx.plugin import (
    Attribution,
    ConfigError,
    Metric,
    PluginConfig,
    hookimpl,
    spatial_pointing,
    temporal_pointing,
)


class SpatialPointingConfig(PluginConfig):
    """Tolerance radius, bounding boxes, and how a dataset's clips are combined."""

    tolerance: float = Field(
        7.0, ge=0, description="radius (px) around the maximum point; at most 4096", le=4096
    )
    use_boxes: bool = Field(False, description="compare with each frame's bounding box of the evidence")
    pooling: Literal["frames", "clip", "class"] = Field(
        "frames",
        description="dataset score: frames pooled over the dataset (the study), mean of clip rates, or mean of "
        "per-class pooled rates",
    )


class TemporalPointingConfig(PluginConfig):
    """How a frame's importance is reduced to one number."""

    frame_score: Literal["mean", "max", "sum"] = Field(
        "mean", description="frame value before the argmax: mean (= sum order, the authors' code) or max"
    )


class SpatialPointing(Metric):
    """Hit rate of the spatial pointing game over frames with ground truth."""

    higher_is_better = True

    def __init__(self, config: SpatialPointingConfig) -> None:
        self.config = config

    def score(self, model: Any, video: Tensor, attribution: Attribution, **context: Any) -> dict[str, Any]:
        evidence = context.get("evidence")
        if evidence is None:
            raise ConfigError(
                "spatial_pointing needs ground truth: no 'evidence' in the context.",
                "Pass evidence=bool[T, H, W] (e.g. clip.evidence of removalx.zoo.data.make_clip), "
                "or evaluate on a dataset with evidence (zoo:synthetic).",
            )
        cfg = self.config
        out = spatial_pointing(
            attribution.importance(),
            torch.as_tensor(evidence),
            tolerance=cfg.tolerance,
            use_boxes=cfg.use_boxes,
        )
        label = context.get("label")
        return {
            **out,
            "pooling": cfg.pooling,
            "label": None if label is None else int(label),
            "higher_is_better": True,
            "preset": None,
            "settings": cfg.model_dump(),
            "n_forward": 0,
        }


class TemporalPointing(Metric):
    """1 when the most important frame is a ground-truth frame, else 0 (NaN for a clip without ground-truth frames)."""

    higher_is_better = True

    def __init__(self, config: TemporalPointingConfig) -> None:
        self.config = config

    def score(self, model: Any, video: Tensor, attribution: Attribution, **context: Any) -> dict[str, Any]:
        frames = context.get("evidence_frames")
        if frames is None and context.get("evidence") is not None:
            ev = torch.as_tensor(context["evidence"]).bool()
            frames = torch.nonzero(ev.flatten(1).any(1)).flatten().tolist()
        if frames is None:
            raise ConfigError(
                "temporal_pointing needs ground truth: no 'evidence_frames' (or 'evidence') in the context.",
                "Pass evidence_frames=[...] (e.g. clip.meta['evidence_frames'] of make_two_part_clip).",
            )
        out = temporal_pointing(attribution.importance(), frames, frame_score=self.config.frame_score)
        settings = self.config.model_dump()
        return {**out, "higher_is_better": True, "preset": None, "settings": settings, "n_forward": 0}


@hookimpl
def removalx_register_metrics(registry):  # type: ignore[no-untyped-def]
    registry.add("spatial_pointing", SpatialPointingConfig, SpatialPointing)
    registry.add("temporal_pointing", TemporalPointingConfig, TemporalPointing)
