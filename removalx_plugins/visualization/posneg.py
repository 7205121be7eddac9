"""``posneg``: green for positive, red for negative relevance, over the clip.

The visualization of 3D LIME, 3D Kernel SHAP, LV LOCO and LV Univariate Predictors
("removal-based video explanations", Sec. 3.5, Table 2 "Pos./Neg. map", LIME's colours),
with the display choices of Sec. 4.5: negative relevance removed (``negatives: drop``), the
30 % most important pixels kept, histogram stretching. ``negatives: show`` with
``rank: abs`` draws both signs and picks the shown pixels by ``|value|`` (LIME's own
display).
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import Tensor

from removalx.plugin import N_COLOURS, Attribution, ConfigError, Legend, Visualizer, hookimpl
from removalx_plugins.machinery.colors import to_uint8
from removalx_plugins.visualization._display import (
    DisplayConfig,
    Rank,
    make_legend,
    quantile_range,
    shown_mask,
    signed_for_display,
    unit_scale,
)


class PosNegConfig(DisplayConfig):
    """Display options (see :class:`~removalx_plugins.visualization._display.DisplayConfig`)."""

    alpha: float = Field(0.6, ge=0, le=1, description="maximum opacity of the colours")
    rank: Rank = Field("value", description="shown pixels chosen by signed 'value' or by 'abs' (|value|)")


class PosNeg(Visualizer):
    """Opacity grows with ``|value|``; hue tells the sign; pixels not shown stay transparent."""

    def __init__(self, config: PosNegConfig) -> None:
        config.check_display()
        if config.top_mode == "mass" and config.negatives == "show" and config.rank == "value":
            raise ConfigError(
                "posneg top_mode 'mass' needs non-negative rank scores, but negatives 'show' "
                "with rank 'value' ranks signed values.",
                "Use rank: abs, negatives: drop, or top_mode: pixels.",
            )
        self.config = config

    def scores(self, attribution: Attribution, device: torch.device) -> tuple[Tensor, Tensor]:
        """``(signed values, shown)``: the displayed values and the ``bool`` mask of shown pixels."""
        cfg = self.config
        a = signed_for_display(attribution.importance().float().to(device), cfg.negatives)
        score = a.abs() if cfg.rank == "abs" else a
        return a, shown_mask(score, a != 0, cfg.top_fraction, cfg.top_mode)

    def _range(self, a: Tensor) -> tuple[float, float]:
        """Magnitudes ``|value|`` at the transparent and the most opaque end of the scale."""
        cfg = self.config
        if cfg.vmax is not None:
            return (cfg.vmin if cfg.vmin is not None else 0.0), cfg.vmax
        mag = a.abs()
        if cfg.stretch:
            return quantile_range(mag, *cfg.stretch_quantiles)
        return 0.0, max(float(mag.max()), 1e-12)

    def display_range(self, attribution: Attribution) -> tuple[float, float]:
        """``(low, high)`` magnitudes mapped to the ends of the opacity scale (for shared scales)."""
        return self._range(self.scores(attribution, torch.device("cpu"))[0])

    def _paint(self, a: Tensor, lo: float, hi: float) -> tuple[Tensor, Tensor]:
        """Colour (green >= 0, red < 0) and opacity (growing with ``|a|``) of every value."""
        green = torch.tensor([0.0, 1.0, 0.0], device=a.device)
        red = torch.tensor([1.0, 0.0, 0.0], device=a.device)
        colour = torch.where((a >= 0).unsqueeze(-1), green, red)
        return colour, self.config.alpha * unit_scale(a.abs(), lo, hi)

    def frames(self, video: Tensor, attribution: Attribution) -> Tensor:
        a, shown = self.scores(attribution, video.device)
        colour, alpha = self._paint(a, *self._range(a))
        alpha = (alpha * shown.float()).unsqueeze(-1)
        return to_uint8(video[..., :3] * (1 - alpha) + colour * alpha)

    def legend(self, attribution: Attribution) -> Legend:
        """The colour bar: red (negative) to green (positive), opacity growing with ``|value|``.

        A diverging map centred at 0; with negatives dropped only the positive half is drawn.
        """
        a, _ = self.scores(attribution, torch.device("cpu"))
        lo, hi = self._range(a)
        signed = self.config.negatives == "show"
        ramp = torch.linspace(-hi if signed else 0.0, hi, N_COLOURS)
        colours, alpha = self._paint(ramp, lo, hi)
        sign = -1.0 if attribution.lower_is_important else 1.0  # displayed = importance = sign * value
        low, high = (sign * float(ramp[0]), sign * float(ramp[-1]))
        return make_legend(self.config, attribution, colours, alpha, (low, high), signed)


@hookimpl
def removalx_register_visualizers(registry):  # type: ignore[no-untyped-def]
    registry.add("posneg", PosNegConfig, PosNeg)
