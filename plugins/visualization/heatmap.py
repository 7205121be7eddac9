"""``heatmap``: a colour-mapped importance map blended over the clip.

The visualization of 3D RISE and 3D SOS ("removal-based video explanations", Sec. 3.7,
Table 2 "Heat map"), with the display choices of Sec. 4.5: keep the 30 % most important
pixels, histogram stretching, negative relevance removed. Attributions whose low values
mean important (3D SOS) are flipped so that hot always means important.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import Tensor

from removalx.colors import COLORMAPS, apply_colormap, stretch, to_uint8, top_fraction_mask
from removalx.errors import ConfigError
from removalx.hookspecs import hookimpl
from removalx.stages import PluginConfig, Visualizer
from removalx.types import Attribution


class HeatmapConfig(PluginConfig):
    """Display options."""

    colormap: str = Field("jet", description=f"one of {', '.join(COLORMAPS)}")
    alpha: float = Field(0.5, ge=0, le=1, description="opacity of the heat map over the clip")
    top_fraction: float | None = Field(None, gt=0, le=1, description="show only this fraction of pixels")
    stretch: bool = Field(True, description="histogram stretching (1st-99th percentile)")
    positive_only: bool = Field(True, description="drop negative relevance before display")


class Heatmap(Visualizer):
    """Hot = important; cold or transparent = unimportant."""

    def __init__(self, config: HeatmapConfig) -> None:
        if config.colormap not in COLORMAPS:
            raise ConfigError(
                f"Unknown colormap {config.colormap!r}.", f"Use one of {', '.join(COLORMAPS)}."
            )
        self.config = config

    def frames(self, video: Tensor, attribution: Attribution) -> Tensor:
        cfg = self.config
        a = attribution.importance().float().to(video.device)
        if attribution.lower_is_important:
            a = a - a.min()  # 3D SOS: distance below the highest output
        if cfg.positive_only:
            a = a.clamp_min(0)
        shown = top_fraction_mask(a, cfg.top_fraction)
        if cfg.stretch:
            s = stretch(a)
        else:
            span = float(a.max() - a.min())
            s = (a - a.min()) / span if span > 0 else torch.zeros_like(a)
        heat = apply_colormap(s, cfg.colormap)
        alpha = (cfg.alpha * shown.float()).unsqueeze(-1)
        return to_uint8(video[..., :3] * (1 - alpha) + heat * alpha)


@hookimpl
def removalx_register_visualizers(registry):  # type: ignore[no-untyped-def]
    registry.add("heatmap", HeatmapConfig, Heatmap)
