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

from removalx.plugin import N_COLOURS, Attribution, ConfigError, Legend, Visualizer, hookimpl
from removalx_plugins.machinery.colors import AUTO, COLORMAPS, apply_colormap, to_uint8
from removalx_plugins.visualization._display import (
    DisplayConfig,
    make_legend,
    quantile_range,
    shown_mask,
    signed_for_display,
    unit_scale,
)


class HeatmapConfig(DisplayConfig):
    """Display options (see :class:`~removalx_plugins.visualization._display.DisplayConfig`)."""

    colormap: str = Field(
        "auto",
        description=(
            f"'auto' (sequential '{AUTO['unsigned']}' for unsigned maps, diverging '{AUTO['signed']}' "
            f"centred at 0 for signed ones) or one of {', '.join(COLORMAPS)}"
        ),
    )
    alpha: float = Field(0.5, ge=0, le=1, description="opacity of the heat map over the clip")
    important: Literal["hot", "cold"] = Field(
        "hot",
        description="colour of the most important pixels: the 'hot' (high) or 'cold' (low) end of the map",
    )


class Heatmap(Visualizer):
    """Important pixels drawn hot (or cold); pixels not shown stay transparent.

    Unsigned maps (negatives dropped, or no negative value) use a sequential colour map from
    the low to the high end of the scale; signed maps (``negatives: show`` with negative
    values) a diverging one on a scale symmetric about 0, so 0 is the map's middle colour.
    """

    def __init__(self, config: HeatmapConfig) -> None:
        if config.colormap != "auto" and config.colormap not in COLORMAPS:
            raise ConfigError(
                f"Unknown colormap {config.colormap[:40]!r}.", f"Use 'auto' or one of {', '.join(COLORMAPS)}."
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

    def _signed(self, a: Tensor) -> bool:
        return self.config.negatives == "show" and bool((a < 0).any())

    def _range(self, a: Tensor) -> tuple[float, float]:
        """Displayed values at the two ends of the colour scale."""
        cfg = self.config
        signed = self._signed(a)
        if cfg.vmax is not None:
            default_low = -cfg.vmax if signed else 0.0
            return (cfg.vmin if cfg.vmin is not None else default_low), cfg.vmax
        if signed:
            m = quantile_range(a.abs(), *cfg.stretch_quantiles)[1] if cfg.stretch else float(a.abs().max())
            return -m, m
        if cfg.stretch:
            return quantile_range(a, *cfg.stretch_quantiles)
        return float(a.min()), float(a.max())

    def display_range(self, attribution: Attribution) -> tuple[float, float]:
        """``(low, high)`` displayed values mapped to the ends of the colour scale (for shared scales)."""
        return self._range(self.scores(attribution, torch.device("cpu"))[0])

    def _colours(self, a: Tensor, lo: float, hi: float, signed: bool) -> Tensor:
        cfg = self.config
        s = unit_scale(a, lo, hi)
        if cfg.important == "cold":
            s = 1.0 - s
        name = cfg.colormap if cfg.colormap != "auto" else AUTO["signed" if signed else "unsigned"]
        return apply_colormap(s, name)

    def frames(self, video: Tensor, attribution: Attribution) -> Tensor:
        cfg = self.config
        a, shown = self.scores(attribution, video.device)
        lo, hi = self._range(a)
        heat = self._colours(a, lo, hi, self._signed(a))
        alpha = (cfg.alpha * shown.float()).unsqueeze(-1)
        return to_uint8(video[..., :3] * (1 - alpha) + heat * alpha)

    def legend(self, attribution: Attribution) -> Legend:
        """The colour bar: colours of displayed values from the low to the high end of the scale.

        Tick labels are attribution values; for maps where lower is more important (3D SOS)
        the bar runs from the highest value (left) to the lowest (right).
        """
        a, _ = self.scores(attribution, torch.device("cpu"))
        lo, hi = self._range(a)
        signed = self._signed(a)
        ramp = torch.linspace(lo, hi, N_COLOURS)
        colours = self._colours(ramp, lo, hi, signed)
        alpha = torch.full((N_COLOURS,), self.config.alpha)
        if attribution.lower_is_important:  # displayed a = max(values) - values
            top = float(attribution.values.float().max())
            low, high = top - lo, top - hi
        else:
            low, high = lo, hi
        return make_legend(self.config, attribution, colours, alpha, (low, high), signed)


@hookimpl
def removalx_register_visualizers(registry):  # type: ignore[no-untyped-def]
    registry.add("heatmap", HeatmapConfig, Heatmap)
