"""Colour maps and overlays for attribution maps (used by visualization plugins).

The colour maps are matplotlib's (``jet``, ``hot``, ``inferno``, ``gray``, ``coolwarm``, ``PiYG``,
``viridis``): their 256-colour tables are vendored in
:mod:`removalx_plugins.machinery.colormap_tables`, and :func:`apply_colormap` looks a value up
exactly as ``matplotlib.colors.Colormap.__call__`` does (bin ``floor(x * 256)``, 1.0 in the last
bin), so an overlay has the colours a matplotlib figure of the same values would.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

from removalx_plugins.machinery.colormap_tables import TABLES

#: Number of colours in every table (matplotlib's default ``N``).
N_TABLE = 256


@functools.cache
def colormap_table(name: str) -> Tensor:
    """``float32[256, 3]`` RGB in [0, 1]: matplotlib's table of colour map ``name`` (8-bit)."""
    raw = bytes.fromhex(TABLES[name])
    return torch.frombuffer(bytearray(raw), dtype=torch.uint8).view(N_TABLE, 3).float() / 255


_MAPS = TABLES  # the names of the maps (kept for code that lists them)
COLORMAPS = tuple(_MAPS)
#: Colour maps for signed maps (diverging, centred at 0) and unsigned maps (sequential).
DIVERGING = ("coolwarm", "piyg")
SEQUENTIAL = ("inferno", "viridis", "hot", "gray", "jet")
#: What ``colormap: auto`` picks for each kind of map.
AUTO = {"signed": "coolwarm", "unsigned": "inferno"}


def apply_colormap(x: Tensor, name: str = "jet") -> Tensor:
    """Map values in [0, 1] (any shape) to RGB in [0, 1] (shape ``[..., 3]``).

    matplotlib's lookup: value ``x`` gets colour ``floor(x * 256)`` of the 256-colour table (1.0
    the last one); values outside [0, 1] are clamped.
    """
    table = colormap_table(name).to(x.device)
    idx = (x.float().clamp(0, 1) * N_TABLE).long().clamp(max=N_TABLE - 1)
    return table[idx]


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
