"""Colour maps and overlays for attribution maps (used by visualization plugins)."""

from __future__ import annotations

import torch
from torch import Tensor

# Anchor colours of the maps, interpolated linearly (values in [0, 1]).
_MAPS: dict[str, list[tuple[float, float, float]]] = {
    "jet": [(0, 0, 0.5), (0, 0, 1), (0, 1, 1), (1, 1, 0), (1, 0, 0), (0.5, 0, 0)],
    "hot": [(0, 0, 0), (1, 0, 0), (1, 1, 0), (1, 1, 1)],
    "inferno": [(0, 0, 0.02), (0.34, 0.06, 0.43), (0.73, 0.21, 0.33), (0.98, 0.55, 0.04), (0.99, 1, 0.64)],
    "gray": [(0, 0, 0), (1, 1, 1)],
    # Diverging maps for signed values (0 in the middle): blue - white - red, and ColorBrewer's
    # PiYG-like magenta - white - green.
    "coolwarm": [
        (0.23, 0.30, 0.75),
        (0.55, 0.69, 1.0),
        (0.87, 0.87, 0.87),
        (0.96, 0.6, 0.48),
        (0.71, 0.02, 0.15),
    ],
    "piyg": [
        (0.56, 0.0, 0.32),
        (0.91, 0.59, 0.77),
        (0.97, 0.97, 0.97),
        (0.62, 0.85, 0.40),
        (0.15, 0.39, 0.10),
    ],
    # Perceptually uniform sequential map for unsigned values.
    "viridis": [
        (0.27, 0.0, 0.33),
        (0.23, 0.32, 0.55),
        (0.13, 0.57, 0.55),
        (0.37, 0.79, 0.38),
        (0.99, 0.91, 0.14),
    ],
}
COLORMAPS = tuple(_MAPS)
#: Colour maps for signed maps (diverging, centred at 0) and unsigned maps (sequential).
DIVERGING = ("coolwarm", "piyg")
SEQUENTIAL = ("inferno", "viridis", "hot", "gray", "jet")
#: What ``colormap: auto`` picks for each kind of map.
AUTO = {"signed": "coolwarm", "unsigned": "inferno"}


def apply_colormap(x: Tensor, name: str = "jet") -> Tensor:
    """Map values in [0, 1] (any shape) to RGB in [0, 1] (shape ``[..., 3]``)."""
    anchors = torch.tensor(_MAPS[name], dtype=torch.float32, device=x.device)
    n = anchors.shape[0] - 1
    pos = x.clamp(0, 1) * n
    lo = pos.floor().long().clamp(max=n - 1)
    frac = (pos - lo).unsqueeze(-1)
    return anchors[lo] * (1 - frac) + anchors[lo + 1] * frac


def stretch(x: Tensor, low: float = 0.01, high: float = 0.99) -> Tensor:
    """Histogram stretching: map the ``low``/``high`` quantiles of ``x`` to 0 and 1, clamp."""
    flat = x.flatten().float()
    if flat.numel() > 1_000_000:  # quantile() limit; a strided subsample is enough
        flat = flat[:: flat.numel() // 1_000_000 + 1]
    lo, hi = torch.quantile(flat, torch.tensor([low, high], device=flat.device))
    if float(hi - lo) <= 0:
        return torch.zeros_like(x)
    return ((x - lo) / (hi - lo)).clamp(0, 1)


def top_fraction_mask(score: Tensor, fraction: float | None) -> Tensor:
    """``bool`` mask of the ``fraction`` highest values of ``score`` (all if ``None``)."""
    if fraction is None or fraction >= 1:
        return torch.ones_like(score, dtype=torch.bool)
    k = max(1, round(fraction * score.numel()))
    thresh = score.flatten().float().kthvalue(score.numel() - k + 1).values
    return score >= thresh


def to_uint8(rgb: Tensor) -> Tensor:
    """``float`` RGB in [0, 1] -> ``uint8``."""
    return (rgb.clamp(0, 1) * 255).round().to(torch.uint8)
