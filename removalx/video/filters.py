"""Image filters on tensors (on any device), shared by removal plugins, explainers and metrics."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["blur_frames", "gaussian_kernel", "gaussian_kernel1d", "separable_blur"]


def gaussian_kernel(sigma: float, radius: int, device: torch.device | str | None = None) -> Tensor:
    """``float32[2 radius + 1]``: ``exp(-x^2 / (2 sigma^2))`` on ``x = -radius .. radius``, summing to 1."""
    xs = torch.arange(-radius, radius + 1, dtype=torch.float32, device=device)
    k = torch.exp(-0.5 * (xs / sigma) ** 2)
    return k / k.sum()


def gaussian_kernel1d(sigma: float, device: torch.device | None = None) -> Tensor:
    """Normalised 1D Gaussian of radius ``ceil(3 sigma)`` (at least 1)."""
    return gaussian_kernel(sigma, max(1, math.ceil(3 * sigma)), device)


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


def blur_frames(video: Tensor, sigma: float) -> Tensor:
    """Blur every frame of ``video`` (``[..., H, W, C]``) with a Gaussian of ``sigma`` px.

    Separable convolution with reflect padding; ``sigma <= 0`` returns the input.
    """
    if sigma <= 0:
        return video
    lead = video.shape[:-3]
    h, w, c = video.shape[-3:]
    x = video.reshape(-1, h, w, c).permute(0, 3, 1, 2).reshape(-1, 1, h, w)
    k = gaussian_kernel1d(sigma, video.device)
    x = separable_blur(x, k, k.numel() // 2, "reflect")
    return x.reshape(-1, c, h, w).permute(0, 2, 3, 1).reshape(*lead, h, w, c)
