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

from removalx.colors import stretch, to_uint8
from removalx.errors import ConfigError
from removalx.hookspecs import hookimpl
from removalx.stages import Visualizer
from removalx.types import Attribution
from removalx_plugins.visualization._display import DisplayConfig, Rank, shown_mask, signed_for_display


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

    def frames(self, video: Tensor, attribution: Attribution) -> Tensor:
        cfg = self.config
        a, shown = self.scores(attribution, video.device)
        mag = a.abs()
        m = stretch(mag, *cfg.stretch_quantiles) if cfg.stretch else mag / mag.max().clamp_min(1e-12)
        green = torch.tensor([0.0, 1.0, 0.0], device=video.device)
        red = torch.tensor([1.0, 0.0, 0.0], device=video.device)
        colour = torch.where((a >= 0).unsqueeze(-1), green, red)
        alpha = (cfg.alpha * m * shown.float()).unsqueeze(-1)
        return to_uint8(video[..., :3] * (1 - alpha) + colour * alpha)


@hookimpl
def removalx_register_visualizers(registry):  # type: ignore[no-untyped-def]
    registry.add("posneg", PosNegConfig, PosNeg)
