"""``minimal_mask``: the smallest share of pixels that keeps or destroys the prediction.

"removal-based video explanations" Sec. 4.6.1: the minimal mask at several target
prediction thresholds, reported as a percentage of the clip's pixels. Read from the
insertion (keeps) or deletion (destroys) curve, shared with the AUC metrics through
``context["curve_cache"]``: with the same curve settings it costs no forward pass.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field
from torch import Tensor

from removalx.hookspecs import hookimpl
from removalx.metrics.perturbation import minimal_mask
from removalx.stages import Metric
from removalx.types import Attribution

from .insertion_deletion import CurveConfig, get_curve


class MinimalMaskConfig(CurveConfig):
    """Minimal mask settings: which game and which thresholds (share of the clean prediction)."""

    mode: Literal["insertion", "deletion"] = Field(
        "deletion", description="insertion: mask that keeps the prediction; deletion: mask that destroys it"
    )
    thresholds: tuple[float, ...] = Field(
        (0.5, 0.75, 0.9), description="share of the clean prediction kept (insertion) / destroyed (deletion)"
    )
    relative: bool = Field(True, description="thresholds relative to the clean-clip probability (else absolute)")


class MinimalMask(Metric):
    """Mean over thresholds of the minimal mask size in % of pixels (lower is better)."""

    higher_is_better = False

    def __init__(self, config: MinimalMaskConfig) -> None:
        self.config = config
        self.curve_config = CurveConfig(
            **config.model_dump(exclude={"mode", "thresholds", "relative"})
        )

    def score(self, model: Any, video: Tensor, attribution: Attribution, **context: Any) -> dict[str, Any]:
        curve, reused = get_curve(model, video, attribution, self.curve_config, self.config.mode, context)
        sizes = minimal_mask(curve, self.config.thresholds, relative=self.config.relative)
        pct = {f"{t:g}": 100.0 * v for t, v in sizes.items()}
        return {
            "value": sum(pct.values()) / len(pct),
            "higher_is_better": False,
            "percent": pct,
            "n_forward": 0 if reused else int(curve.meta["n_forward"]),
        }


@hookimpl
def removalx_register_metrics(registry):  # type: ignore[no-untyped-def]
    registry.add("minimal_mask", MinimalMaskConfig, MinimalMask)
