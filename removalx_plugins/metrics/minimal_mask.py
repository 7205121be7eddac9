"""``minimal_mask``: the smallest share of pixels that keeps or destroys the prediction.

"removal-based video explanations" Sec. 4.6.1: the minimal mask at several target
prediction thresholds, reported as a percentage of the clip's pixels. Read from the
insertion (keeps) or deletion (destroys) curve, shared with the AUC metrics through
``context["curve_cache"]``: with the same curve settings (the same ``preset`` and
overrides) it costs no forward pass. The defaults follow the paper's released evaluator:
the thresholds are target probabilities, read at the curve's points.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field
from torch import Tensor

from removalx.plugin import Attribution, Metric, hookimpl, minimal_mask

from .insertion_deletion import CurveConfig, get_curve, resolved_settings

#: The thresholds of the released evaluator's example (target probabilities).
REMOVAL_THRESHOLDS = (0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


class MinimalMaskConfig(CurveConfig):
    """Minimal mask settings: which game, which thresholds and how they are read."""

    mode: Literal["insertion", "deletion"] = Field(
        "deletion", description="insertion: mask that keeps the prediction; deletion: mask that destroys it"
    )
    thresholds: tuple[Annotated[float, Field(ge=-1e6, le=1e6)], ...] = Field(
        REMOVAL_THRESHOLDS, min_length=1, description="prediction thresholds (see kind), each in [-1e6, 1e6]"
    )
    kind: Literal["target", "share"] = Field(
        "target",
        description="target: threshold = the prediction to reach; share: share of the clean prediction "
        "kept (insertion) / destroyed (deletion)",
    )
    relative: bool = Field(False, description="scale the thresholds by the clean-clip prediction")
    interpolate: bool = Field(False, description="interpolate the crossing between curve points")

    def curve_mode(self) -> str:
        return self.mode


class MinimalMask(Metric):
    """Mean over thresholds of the minimal mask size in % of pixels (lower is better)."""

    higher_is_better = False

    def __init__(self, config: MinimalMaskConfig) -> None:
        self.config = config

    def score(self, model: Any, video: Tensor, attribution: Attribution, **context: Any) -> dict[str, Any]:
        cfg = self.config
        curve, reused = get_curve(model, video, attribution, cfg, cfg.mode, context)
        sizes = minimal_mask(curve, cfg.thresholds, cfg.relative, kind=cfg.kind, interpolate=cfg.interpolate)
        pct = {f"{t:g}": 100.0 * v for t, v in sizes.items()}
        settings = resolved_settings(cfg, cfg.mode, curve)
        settings.update(
            thresholds=list(cfg.thresholds), kind=cfg.kind, relative=cfg.relative, interpolate=cfg.interpolate
        )
        settings.pop("auc", None)
        return {
            "value": sum(pct.values()) / len(pct),
            "higher_is_better": False,
            "percent": pct,
            "preset": cfg.preset,
            "settings": settings,
            "overrides": cfg.overrides(),
            "n_forward": 0 if reused else int(curve.meta["n_forward"]),
        }


@hookimpl
def removalx_register_metrics(registry):  # type: ignore[no-untyped-def]
    registry.add("minimal_mask", MinimalMaskConfig, MinimalMask)
