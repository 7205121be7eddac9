"""Display choices shared by the ``heatmap`` and ``posneg`` visualizations.

"removal-based video explanations" (Sec. 3.5 and 4.5) shows users only the most important
part of an explanation: negative relevance is removed, the 30 % most important regions are
kept, and histogram stretching spreads the kept values over the colour range. This module
holds those three steps so that both visualizations apply them the same way:

- :func:`signed_for_display` drops or keeps negative relevance;
- :func:`shown_mask` picks the pixels to draw (a fraction of the clip's pixels, or the
  smallest set of top pixels carrying a fraction of the total importance);
- ``stretch_quantiles`` (used with :func:`removalx_plugins.machinery.colors.stretch`) maps values to ``[0, 1]``
  between two quantiles; ``(0, 1)`` is plain min-max stretching.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

import torch
from pydantic import Field
from torch import Tensor

from removalx.plugin import Attribution, ConfigError, Legend, PluginConfig

Negatives = Literal["drop", "show"]
Rank = Literal["value", "abs"]
TopMode = Literal["pixels", "mass"]

#: A quantile, bounded at validation.
_Quantile = Annotated[float, Field(ge=0, le=1)]


class DisplayConfig(PluginConfig):
    """Options common to the built-in visualizations (which pixels, which values)."""

    top_fraction: float | None = Field(
        None, gt=0, le=1, description="show only this fraction of the clip (see top_mode); None: all"
    )
    top_mode: TopMode = Field(
        "pixels",
        description=(
            "'pixels': the top_fraction of the clip's pixels with the highest rank score; "
            "'mass': the fewest top pixels whose scores sum to top_fraction of the total score"
        ),
    )
    negatives: Negatives = Field("drop", description="'drop': never show negative relevance; 'show': keep it")
    stretch: bool = Field(True, description="histogram stretching of the displayed magnitude")
    stretch_quantiles: tuple[_Quantile, _Quantile] = Field(
        (0.01, 0.99),
        description="quantiles mapped to 0 and 1 by the stretching, each in [0, 1]; (0, 1) is min-max",
    )
    vmin: float | None = Field(
        None,
        description=(
            "fixed value at the low end of the colour scale (replaces stretching; default: 0, or -vmax "
            "for signed maps); set vmin/vmax to compare maps on one scale"
        ),
    )
    vmax: float | None = Field(
        None, description="fixed value at the high end of the colour scale (replaces stretching)"
    )

    def check_display(self) -> None:
        """Raise :class:`ConfigError` for inconsistent display options."""
        lo, hi = self.stretch_quantiles
        if not 0.0 <= lo < hi <= 1.0:
            raise ConfigError(
                f"stretch_quantiles must satisfy 0 <= low < high <= 1, got ({lo:g}, {hi:g}).",
                "Use e.g. [0.0, 1.0] for min-max stretching or [0.01, 0.99] to clip outliers.",
            )
        if self.vmin is not None and self.vmax is None:
            raise ConfigError("vmin is set but vmax is not.", "Set vmax too (or neither).")
        for name, v in (("vmin", self.vmin), ("vmax", self.vmax)):
            if v is not None and not math.isfinite(v):
                raise ConfigError(f"{name} must be a finite number, got {v}.", f"Pass e.g. {name}=1.0.")
        if self.vmax is not None and self.vmin is not None and not self.vmin < self.vmax:
            raise ConfigError(
                f"vmin must be below vmax, got vmin={self.vmin:g}, vmax={self.vmax:g}.",
                "Swap them, or use removalx.display.visualize.shared_scale(...) to compute a common scale.",
            )


def quantile_range(x: Tensor, low: float, high: float) -> tuple[float, float]:
    """The ``low`` and ``high`` quantiles of ``x`` (a strided subsample above 1e6 values)."""
    flat = x.flatten().float()
    if flat.numel() > 1_000_000:
        flat = flat[:: flat.numel() // 1_000_000 + 1]
    q = torch.quantile(flat, torch.tensor([low, high], device=flat.device))
    return float(q[0]), float(q[1])


def unit_scale(x: Tensor, lo: float, hi: float) -> Tensor:
    """``(x - lo) / (hi - lo)`` clamped to [0, 1]; zeros when ``hi <= lo``."""
    if hi - lo <= 0:
        return torch.zeros_like(x)
    return ((x - lo) / (hi - lo)).clamp(0, 1)


def legend_note(config: DisplayConfig) -> str:
    """What the overlay leaves out, for the colour bar (e.g. ``"top 30 % of pixels shown"``)."""
    parts = []
    if config.top_fraction is not None and config.top_fraction < 1:
        unit = "" if config.top_mode == "pixels" else " of importance"
        parts.append(f"top {config.top_fraction * 100:g} %{unit} shown")
    if config.negatives == "drop":
        parts.append("no negatives")
    return ", ".join(parts)


def signed_for_display(a: Tensor, negatives: Negatives) -> Tensor:
    """``a`` with negative relevance set to 0 (``"drop"``) or unchanged (``"show"``)."""
    return a.clamp_min(0) if negatives == "drop" else a


def shown_mask(score: Tensor, candidates: Tensor, fraction: float | None, mode: TopMode) -> Tensor:
    """``bool`` mask of the pixels to draw.

    Parameters
    ----------
    score : Tensor
        Rank score of every pixel (higher = shown first); ``"mass"`` needs ``score >= 0``
        on the candidates.
    candidates : Tensor
        ``bool``, pixels that may be shown at all (e.g. positive relevance only).
    fraction : float or None
        ``"pixels"``: the ``round(fraction * n_pixels)`` pixels with the highest score (ties at
        the threshold are all shown, so whole regions stay whole); ``"mass"``: the top pixels
        whose scores first sum to ``fraction`` of the candidates' total. ``None``: every
        candidate.
    mode : {"pixels", "mass"}
    """
    if fraction is None or fraction >= 1:
        return candidates.clone()
    flat = torch.where(candidates, score, torch.full_like(score, -torch.inf)).flatten().float()
    n_cand = int(candidates.sum())
    if n_cand == 0:
        return candidates.clone()
    ordered = flat.sort(descending=True).values[:n_cand]
    if mode == "pixels":
        k = min(max(1, round(fraction * flat.numel())), n_cand)
        thresh = ordered[k - 1]
    else:
        mass = ordered.clamp_min(0).double().cumsum(0)
        total = float(mass[-1])
        if total <= 0:
            return torch.zeros_like(candidates)
        idx = int(torch.searchsorted(mass, torch.tensor([fraction * total], dtype=mass.dtype)).item())
        thresh = ordered[min(idx, n_cand - 1)]
    return candidates & (score >= thresh)


def legend_label(attribution: Attribution) -> str:
    """``"attribution (<recipe>)"``: the label of an overlay's colour bar."""
    recipe = attribution.meta.get("recipe") or {}
    name = recipe.get("name") if isinstance(recipe, dict) else None
    return f"attribution ({str(name)[:40]})" if name else "attribution"


def make_legend(
    config: DisplayConfig,
    attribution: Attribution,
    colours: Tensor,
    alpha: Tensor,
    ends: tuple[float, float],
    signed: bool,
) -> Legend:
    """The :class:`~removalx.core.legend.Legend` of a built-in visualization (label and note added)."""
    return Legend(
        colours,
        alpha,
        ends[0],
        ends[1],
        label=legend_label(attribution),
        signed=signed,
        note=legend_note(config),
    )
