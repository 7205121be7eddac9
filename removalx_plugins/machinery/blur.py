"""Separable per-frame Gaussian blurs shared by built-in explainers (``blur_ig``, ``ep3d``, ``step``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["gaussian_kernel", "separable_blur"]


def gaussian_kernel(sigma: float, radius: int, device: torch.device | str | None = None) -> Tensor:
    """``float32[2 radius + 1]``: ``exp(-x^2 / (2 sigma^2))`` on ``x = -radius .. radius``, summing to 1."""
    xs = torch.arange(-radius, radius + 1, dtype=torch.float32, device=device)
    k = torch.exp(-0.5 * (xs / sigma) ** 2)
    return k / k.sum()


def separable_blur(x: Tensor, kernel: Tensor, radius: int, padding: str) -> Tensor:
    """Convolve every ``[H, W]`` plane of ``x`` (``[N, 1, H, W]``) with ``kernel`` along W, then H.

    ``padding``: ``"zeros"``, ``"replicate"`` or ``"reflect"`` (replicate once ``radius``
    reaches the frame size, where reflect padding is undefined).
    """
    if padding == "zeros":
        x = F.conv2d(x, kernel.view(1, 1, 1, -1), padding=(0, radius))
        return F.conv2d(x, kernel.view(1, 1, -1, 1), padding=(radius, 0))
    h, w = x.shape[-2:]
    mode = padding if padding == "replicate" or radius < min(h, w) else "replicate"
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode=mode), kernel.view(1, 1, 1, -1))
    return F.conv2d(F.pad(x, (0, 0, radius, radius), mode=mode), kernel.view(1, 1, -1, 1))
