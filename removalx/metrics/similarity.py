"""Similarity of two attribution maps: rank and linear correlation, SSIM, top-k intersection.

The sanity checks compare an explanation with the explanation of a randomised model or of
another class (Adebayo et al. 2018, Sec. 3 and Fig. 2: Spearman rank correlation with and
without absolute values, SSIM; Sixt et al. 2020: SSIM); the robustness metrics compare an
explanation with that of a perturbed input. Every function takes two tensors of the same
shape (any shape; flattened unless said otherwise) and returns a float, or, with
``batched=True``, one value per row of the leading dimension as a ``float64`` tensor.

Constant inputs have no ranking and no linear trend: :func:`spearman` and :func:`pearson`
then return 0 (SciPy returns NaN) so that per-clip scores stay averageable; ``0`` reads "no
agreement", as in :func:`removalx.metrics.reliability.spearman`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from removalx.errors import ConfigError

__all__ = ["pearson", "ranks", "spearman", "ssim", "top_k_intersection"]


def _pair(a: Tensor, b: Tensor, batched: bool) -> tuple[Tensor, Tensor]:
    """Both maps as ``float64[B, N]`` rows on ``a``'s device."""
    a = torch.as_tensor(a)
    b = torch.as_tensor(b)
    if a.shape != b.shape:
        raise ConfigError(
            f"Similarity of two maps needs equal shapes, got {tuple(a.shape)} and {tuple(b.shape)}.",
            "Compare explanations of the same clip (same T, H, W).",
        )
    a = a.detach().to(torch.float64)
    b = b.detach().to(a.device, torch.float64)
    if batched:
        if a.dim() < 2:
            raise ConfigError(f"batched=True needs a leading batch dimension, got shape {tuple(a.shape)}.")
        return a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1)
    return a.reshape(1, -1), b.reshape(1, -1)


def _out(v: Tensor, batched: bool) -> Tensor | float:
    return v if batched else float(v[0])


def ranks(x: Tensor) -> Tensor:
    """1-based ranks along the last dimension; ties share their average rank (as SciPy's ``rankdata``)."""
    s = torch.sort(x, dim=-1).values
    lo = torch.searchsorted(s, x.contiguous(), right=False)
    hi = torch.searchsorted(s, x.contiguous(), right=True)
    return (lo + hi + 1).to(torch.float64) / 2


def _pearson_rows(a: Tensor, b: Tensor) -> Tensor:
    a = a - a.mean(dim=-1, keepdim=True)
    b = b - b.mean(dim=-1, keepdim=True)
    na, nb = a.norm(dim=-1), b.norm(dim=-1)
    ok = (na > 0) & (nb > 0)
    r = (a * b).sum(-1) / torch.where(ok, na * nb, torch.ones_like(na))
    return torch.where(ok, r.clamp(-1.0, 1.0), torch.zeros_like(r))


def pearson(a: Tensor, b: Tensor, *, batched: bool = False) -> Tensor | float:
    """Pearson's correlation of the flattened maps (0 when either is constant)."""
    x, y = _pair(a, b, batched)
    return _out(_pearson_rows(x, y), batched)


def spearman(a: Tensor, b: Tensor, *, batched: bool = False) -> Tensor | float:
    """Spearman's rank correlation of the flattened maps (``scipy.stats.spearmanr``; 0 when constant).

    Adebayo et al. 2018 (Sec. 3) compare maps with it, with and without absolute values; take
    ``.abs()`` of the maps before calling for the absolute variant.
    """
    x, y = _pair(a, b, batched)
    return _out(_pearson_rows(ranks(x), ranks(y)), batched)


def top_k_intersection(a: Tensor, b: Tensor, k: int, *, batched: bool = False) -> Tensor | float:
    """Fraction of the ``k`` highest entries of ``a`` that are among the ``k`` highest of ``b``.

    The top-k intersection of Ghorbani et al. 2019 (Sec. 3), in [0, 1]; ties are broken by
    position (the order of ``torch.topk``).
    """
    x, y = _pair(a, b, batched)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= x.shape[1]:
        raise ConfigError(
            f"top_k_intersection needs an int k in [1, {x.shape[1]}] (the map size), got {k!r:.80}.",
            "Pick k no larger than the number of map entries.",
        )
    ia = torch.zeros_like(x, dtype=torch.bool).scatter_(1, x.topk(k, dim=1).indices, True)
    ib = torch.zeros_like(y, dtype=torch.bool).scatter_(1, y.topk(k, dim=1).indices, True)
    return _out((ia & ib).sum(1).to(torch.float64) / k, batched)


def _window_mean(x: Tensor, win: int) -> Tensor:
    """Mean over every full ``win``-wide window of the trailing spatial dims (1D or 2D, valid only)."""
    if x.dim() == 2:  # [B, N]
        return F.avg_pool1d(x[:, None], win, stride=1)[:, 0]
    return F.avg_pool2d(x[:, None], win, stride=1)[:, 0]


def ssim(a: Tensor, b: Tensor, *, data_range: float | None = None, win_size: int = 7) -> float:
    """Mean structural similarity (Wang et al. 2004) of two 1D, 2D or 3D ``[T, H, W]`` maps.

    Matches ``skimage.metrics.structural_similarity`` with its defaults (uniform
    ``win_size``-wide window, sample covariance, ``K1 = 0.01``, ``K2 = 0.03``, mean over the
    positions whose window lies inside the map). A 3D map is compared frame by frame (2D
    windows) and the frames' SSIMs are averaged: SSIM is an image measure, and the sanity
    checks' papers apply it to images. ``data_range`` defaults to the joint range
    ``max - min`` of both maps (as Quantus's ``ssim``). When a side is shorter than
    ``win_size`` the window shrinks to the largest odd size that fits. Two identical constant
    maps give 1.
    """
    x, y = _pair(a, b, False)
    shape = tuple(torch.as_tensor(a).shape)
    if len(shape) not in (1, 2, 3) or min(shape) < 1:
        raise ConfigError(f"ssim compares 1D, 2D or [T, H, W] maps, got shape {shape}.")
    rows = x.reshape((1, *shape) if len(shape) < 3 else shape)  # [frames, (H,) W]
    cols = y.reshape(rows.shape)
    rng = float(torch.maximum(x.max(), y.max()) - torch.minimum(x.min(), y.min()))
    rng = rng if data_range is None else float(data_range)
    if rng <= 0:
        return 1.0 if bool(torch.equal(x, y)) else 0.0
    win = min([win_size, *rows.shape[1:]])
    win = win if win % 2 else win - 1
    if win < 1:  # pragma: no cover - shapes have sides >= 1
        raise ConfigError(f"ssim needs maps with sides >= 1, got {shape}.")
    n = win ** (rows.dim() - 1)
    cov = n / (n - 1) if n > 1 else 1.0
    ux, uy = _window_mean(rows, win), _window_mean(cols, win)
    vx = cov * (_window_mean(rows * rows, win) - ux * ux)
    vy = cov * (_window_mean(cols * cols, win) - uy * uy)
    vxy = cov * (_window_mean(rows * cols, win) - ux * uy)
    c1, c2 = (0.01 * rng) ** 2, (0.03 * rng) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return float(s.reshape(s.shape[0], -1).mean(1).mean())
