"""``posneg``: green for positive, red for negative relevance, over the clip.

The visualization of 3D LIME, 3D Kernel SHAP, LV LOCO and LV Univariate Predictors
("removal-based video explanations", Sec. 3.7, Table 2 "Pos./Neg. map", LIME's colours),
with Sec. 4.5's display choices (top fraction, histogram stretching).
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import Tensor

from removalx.colors import stretch, to_uint8, top_fraction_mask
from removalx.hookspecs import hookimpl
from removalx.stages import PluginConfig, Visualizer
from removalx.types import Attribution


class PosNegConfig(PluginConfig):
    """Display options."""

    alpha: float = Field(0.6, ge=0, le=1, description="maximum opacity of the colours")
    top_fraction: float | None = Field(None, gt=0, le=1, description="show only this fraction (by |value|)")
    stretch: bool = Field(True, description="histogram stretching of |value|")
    positive_only: bool = Field(False, description="hide negative relevance")


class PosNeg(Visualizer):
    """Opacity grows with ``|value|``; hue tells the sign."""

    def __init__(self, config: PosNegConfig) -> None:
        self.config = config

    def frames(self, video: Tensor, attribution: Attribution) -> Tensor:
        cfg = self.config
        a = attribution.importance().float().to(video.device)
        if cfg.positive_only:
            a = a.clamp_min(0)
        mag = a.abs()
        shown = top_fraction_mask(mag, cfg.top_fraction) & (mag > 0)
        m = stretch(mag) if cfg.stretch else mag / mag.max().clamp_min(1e-12)
        green = torch.tensor([0.0, 1.0, 0.0], device=video.device)
        red = torch.tensor([1.0, 0.0, 0.0], device=video.device)
        colour = torch.where((a >= 0).unsqueeze(-1), green, red)
        alpha = (cfg.alpha * m * shown.float()).unsqueeze(-1)
        return to_uint8(video[..., :3] * (1 - alpha) + colour * alpha)


@hookimpl
def removalx_register_visualizers(registry):  # type: ignore[no-untyped-def]
    registry.add("posneg", PosNegConfig, PosNeg)
