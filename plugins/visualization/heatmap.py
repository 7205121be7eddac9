"""``heatmap``: a colour-mapped importance map blended over the clip.

The visualization of 3D RISE and 3D SOS ("removal-based video explanations", Sec. 3.5,
Table 2 "Heat map"), with the display choices of Sec. 4.5: negative relevance removed, the
30 % most important pixels kept, histogram stretching. Table 2 (footnote 5) shows importance
as *hot* regions for RISE but as *cold* regions for Occlusion Sensitivity; ``important``
chooses the end of the colour map the most important pixels get. Attributions whose low
values mean important (3D SOS, ``lower_is_important``) are ranked by their distance below
the highest value, so the shown pixels are always the most important ones.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import Tensor

from removalx.colors import COLORMAPS, apply_colormap, stretch, to_uint8
from removalx.errors import ConfigError
from removalx.hookspecs import hookimpl
from removalx.stages import Visualizer
from removalx.types import Attribution
from removalx_plugins.visualization._display import DisplayConfig, shown_mask, signed_for_display


class HeatmapConfig(DisplayConfig):
    """Display options (see :class:`~removalx_plugins.visualization._display.DisplayConfig`)."""

    colormap: str = Field("jet", description=f"one of {', '.join(COLORMAPS)}")
    alpha: float = Field(0.5, ge=0, le=1, description="opacity of the heat map over the clip")
    important: Literal["hot", "cold"] = Field(
        "hot",
        description="colour of the most important pixels: the 'hot' (high) or 'cold' (low) end of the map",
    )


class Heatmap(Visualizer):
    """Important pixels drawn hot (or cold); pixels not shown stay transparent."""

    def __init__(self, config: HeatmapConfig) -> None:
        if config.colormap not in COLORMAPS:
            raise ConfigError(
                f"Unknown colormap {config.colormap[:40]!r}.", f"Use one of {', '.join(COLORMAPS)}."
            )
        config.check_display()
        self.config = config

    def scores(self, attribution: Attribution, device: torch.device) -> tuple[Tensor, Tensor]:
        """``(importance, shown)``: the displayed importance and the ``bool`` mask of shown pixels."""
        cfg = self.config
        a = attribution.importance().float().to(device)
        if attribution.lower_is_important:
            a = a - a.min()  # 3D SOS: distance below the highest output
        a = signed_for_display(a, cfg.negatives)
        candidates = a > 0 if cfg.negatives == "drop" else torch.ones_like(a, dtype=torch.bool)
        return a, shown_mask(a, candidates, cfg.top_fraction, cfg.top_mode)

    def frames(self, video: Tensor, attribution: Attribution) -> Tensor:
        cfg = self.config
        a, shown = self.scores(attribution, video.device)
        if cfg.stretch:
            s = stretch(a, *cfg.stretch_quantiles)
        else:
            span = float(a.max() - a.min())
            s = (a - a.min()) / span if span > 0 else torch.zeros_like(a)
        if cfg.important == "cold":
            s = 1.0 - s
        heat = apply_colormap(s, cfg.colormap)
        alpha = (cfg.alpha * shown.float()).unsqueeze(-1)
        return to_uint8(video[..., :3] * (1 - alpha) + heat * alpha)


@hookimpl
def removalx_register_visualizers(registry):  # type: ignore[no-untyped-def]
    registry.add("heatmap", HeatmapConfig, Heatmap)
