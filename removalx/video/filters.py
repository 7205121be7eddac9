"""Image filters on tensors (on any device), shared by removal plugins and metrics."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def gaussian_kernel1d(sigma: float, device: torch.device | None = None) -> Tensor:
    """Normalised 1D Gaussian of radius ``ceil(3 sigma)``."""
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32, device=device)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


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
    r = k.numel() // 2
    mode = "reflect" if r < min(h, w) else "replicate"
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode=mode), k.view(1, 1, 1, -1))
    x = F.conv2d(F.pad(x, (0, 0, r, r), mode=mode), k.view(1, 1, -1, 1))
    return x.reshape(-1, c, h, w).permute(0, 2, 3, 1).reshape(*lead, h, w, c)
