"""``saliency_metric``: SM = log(max(a, tau)) - log(p_c) (ECCV-W study, Sec. 3.3, Eq. 6).

``a`` is the area fraction of the importance map binarised at ``threshold`` after min-max
normalisation (the study reports S50 and S75), ``tau = 0.05`` (following Dabkowski & Gal),
and ``p_c`` the target probability when only that region is kept. Lower is better.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field
from torch import Tensor

from removalx.plugin import Attribution, Metric, PluginConfig, hookimpl, saliency_metric


class SaliencyMetricConfig(PluginConfig):
    """Binarisation threshold, area floor tau and substrate of the removed region."""

    threshold: float = Field(
        0.5, ge=0, le=1, description="binarisation threshold of the normalised map (S50: 0.5)"
    )
    tau: float = Field(0.05, gt=0, le=1, description="area floor of Eq. 6")
    fill: Literal["black", "blur", "gray", "mean"] = "black"
    blur_sigma: float = Field(10.0, gt=0, le=1000, description="at most 1000")


class SaliencyMetric(Metric):
    """SM of ECCV-W Eq. 6 (lower is better)."""

    higher_is_better = False

    def __init__(self, config: SaliencyMetricConfig) -> None:
        self.config = config

    def score(self, model: Any, video: Tensor, attribution: Attribution, **context: Any) -> dict[str, Any]:
        settings = self.config.model_dump()
        out = saliency_metric(model, video, attribution.importance(), attribution.target, **settings)
        out.update(higher_is_better=False, preset=None, settings=settings)
        return out


@hookimpl
def removalx_register_metrics(registry):  # type: ignore[no-untyped-def]
    registry.add("saliency_metric", SaliencyMetricConfig, SaliencyMetric)
