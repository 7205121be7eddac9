"""``road``: remove and debias without retraining (Rong, Leemann et al., ICML 2022, Sec. 4).

The top (MoRF) or bottom (LeRF) share of pixels is removed and filled by the noisy linear
imputation, in each frame as the paper does (``neighbourhood: 2d``) or over space-time
neighbours (``6`` / ``26``: removalx's extension); the value is the mean target probability
over the percentages (:func:`removalx.metrics.road.road`). One forward pass per percentage
plus the clean clip; no retraining (the cheap alternative to ``roar``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator
from torch import Tensor

from removalx.plugin import Attribution, Metric, PluginConfig, hookimpl, road


class RoadConfig(PluginConfig):
    """Order, percentages, neighbourhood and noise of the ROAD curve (released-code defaults)."""

    order: Literal["morf", "lerf"] = Field("morf", description="remove the most / least important first")
    percentages: tuple[float, ...] = Field(
        (0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 0.9),
        min_length=1,
        description="shares of pixels removed, each in (0, 1) (released no-retraining experiments)",
    )
    neighbourhood: Literal["2d", "6", "26"] = Field(
        "2d", description="2d: the paper's 8 neighbours per frame; 6 / 26: space-time (removalx's extension)"
    )
    noise: float = Field(
        0.01, ge=0, le=1, description="std of the noise added to imputed values (released: 0.01)"
    )
    behavior: Literal["probability", "logit"] = Field(
        "probability", description="score averaged over the curve"
    )
    solver: Literal["spsolve", "cg"] = Field(
        "spsolve", description="sparse direct solve or conjugate gradients"
    )
    batch_size: int = Field(
        16, ge=1, le=4096, strict=True, description="clips per forward pass; at most 4096"
    )
    seed: int = Field(0, ge=0, le=2**63 - 1, strict=True, description="seed of the noise and the tie order")

    @field_validator("neighbourhood", mode="before")
    @classmethod
    def _number(cls, v: Any) -> Any:
        """Accept ``6`` / ``26`` written as numbers (YAML, the command line)."""
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v

    @field_validator("percentages")
    @classmethod
    def _shares(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if any(not 0.0 < p < 1.0 for p in v):
            raise ValueError("every percentage must be a share in (0, 1), e.g. 0.1 for 10 %")
        return tuple(sorted(set(v)))


class Road(Metric):
    """Mean target score over the ROAD curve (MoRF: lower is better; LeRF: higher is better)."""

    def __init__(self, config: RoadConfig) -> None:
        self.config = config
        self.higher_is_better = config.order == "lerf"

    def score(self, model: Any, video: Tensor, attribution: Attribution, **context: Any) -> dict[str, Any]:
        cfg = self.config
        out = road(model, video, attribution.importance(), attribution.target, **cfg.model_dump())
        out.update(higher_is_better=self.higher_is_better, preset=None, settings=cfg.model_dump())
        if cfg.behavior == "probability":
            out["value_range"] = [0.0, 1.0]
        return out


@hookimpl
def removalx_register_metrics(registry):  # type: ignore[no-untyped-def]
    registry.add("road", RoadConfig, Road)
