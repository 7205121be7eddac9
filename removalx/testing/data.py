"""Tiny clips and models for tests (fast on a CPU)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def tiny_video(frames: int = 4, size: int = 16, seed: int = 0, channels: int = 3) -> Tensor:
    """``float32[T, size, size, C]``: a dim textured background and a bright square moving right.

    The square covers ``size // 4`` pixels per side and starts at the left edge.
    """
    g = torch.Generator().manual_seed(seed)
    video = 0.2 + 0.1 * torch.rand(frames, size, size, channels, generator=g)
    side = max(2, size // 4)
    top = size // 2 - side // 2
    for t in range(frames):
        left = min(size - side, t * max(1, (size - side) // max(frames - 1, 1)))
        video[t, top : top + side, left : left + side, :] = 0.9
    return video.clamp(0, 1)


def square_evidence(frames: int = 4, size: int = 16) -> Tensor:
    """``bool[T, H, W]`` where :func:`tiny_video`'s square is."""
    mask = torch.zeros(frames, size, size, dtype=torch.bool)
    side = max(2, size // 4)
    top = size // 2 - side // 2
    for t in range(frames):
        left = min(size - side, t * max(1, (size - side) // max(frames - 1, 1)))
        mask[t, top : top + side, left : left + side] = True
    return mask


class ToyClassifier(nn.Module):
    """A seeded tiny 3D CNN: ``float[B, C, T, H, W] -> logits [B, n_classes]``."""

    def __init__(self, n_classes: int = 3, channels: int = 3, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.conv1 = nn.Conv3d(channels, 4, kernel_size=3, padding=1)
        self.conv2 = nn.Conv3d(4, 8, kernel_size=3, padding=1)
        self.head = nn.Linear(8, n_classes)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        self.eval()

    def forward(self, x: Tensor) -> Tensor:
        x = torch.relu(self.conv1(x))
        x = torch.relu(self.conv2(x))
        return self.head(x.mean(dim=(2, 3, 4)))


class LinearVideoModel(nn.Module):
    """Logits linear in the pixels: ``logits[k] = sum(weight[k] * x) + bias[k]``.

    With ``behavior: logit`` any removal attribution over a partition is additive, so the
    exact Shapley value of region ``r`` is ``sum_{p in r} weight[target, p] * (x_p - fill_p)``.
    Input layout ``BTHWC`` (wrap with ``VideoClassifier(model, layout="BTHWC")``).
    """

    def __init__(self, weight: Tensor, bias: Tensor | None = None) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight.float(), requires_grad=False)
        k = weight.shape[0]
        self.bias = nn.Parameter(torch.zeros(k) if bias is None else bias.float(), requires_grad=False)

    def forward(self, x: Tensor) -> Tensor:
        return torch.einsum("bthwc,kthwc->bk", x, self.weight) + self.bias
