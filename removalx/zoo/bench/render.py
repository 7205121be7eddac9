"""Batched drawing helpers shared by the benchmark-task generators.

Every benchmark clip is ``uint8[N, 3, T, H, W]`` (BCTHW, the zoo models' layout) of size
:data:`CLIP_SIZE`: a plain gray background (value :data:`NEUTRAL_FILL`) with mild Gaussian
noise, and a few axis-aligned objects. All randomness comes from one ``torch.Generator``.
"""

from __future__ import annotations

import torch

__all__ = [
    "CLIP_SIZE",
    "MAX_NOISE",
    "NEUTRAL_FILL",
    "background",
    "box_mask",
    "paint",
    "paint_texture",
    "quantize",
    "random_texture",
    "uniform_int",
]

#: ``(T, H, W)`` of every benchmark clip.
CLIP_SIZE: tuple[int, int, int] = (16, 32, 32)
#: Background gray as uint8; also the neutral fill that "removes" a region in interventions.
NEUTRAL_FILL: int = 128
#: Per-clip noise standard deviation is drawn uniformly from ``[0, MAX_NOISE]`` (in [0, 1] units).
MAX_NOISE: float = 0.03


def uniform_int(low: int, high: int, shape: tuple[int, ...], gen: torch.Generator) -> torch.Tensor:
    """Integers uniform on ``[low, high]`` (both ends included), ``int64`` of ``shape``."""
    return torch.randint(low, high + 1, shape, generator=gen)


def background(n: int, gen: torch.Generator) -> torch.Tensor:
    """``float32[n, 3, T, H, W]``: gray :data:`NEUTRAL_FILL` plus noise of per-clip std in ``[0, MAX_NOISE]``."""
    t, h, w = CLIP_SIZE
    std = torch.rand(n, generator=gen) * MAX_NOISE
    noise = torch.randn((n, 3, t, h, w), generator=gen) * std.view(n, 1, 1, 1, 1)
    return noise + NEUTRAL_FILL / 255.0


def box_mask(
    x0: torch.Tensor, y0: torch.Tensor, size: int, visible: torch.Tensor | None = None
) -> torch.Tensor:
    """``bool[N, T, H, W]`` of ``size x size`` squares with top-left corners ``(x0, y0)``.

    Parameters
    ----------
    x0, y0 : torch.Tensor
        ``int64[N, T]`` column and row of the top-left pixel in every frame.
    size : int
        Side length in pixels.
    visible : torch.Tensor, optional
        ``bool[N, T]``; frames where it is False get an empty mask.
    """
    _, h, w = CLIP_SIZE
    xs = torch.arange(w).view(1, 1, 1, w)
    ys = torch.arange(h).view(1, 1, h, 1)
    x0, y0 = x0[..., None, None], y0[..., None, None]
    mask = (xs >= x0) & (xs < x0 + size) & (ys >= y0) & (ys < y0 + size)
    if visible is not None:
        mask &= visible[..., None, None]
    return mask


def paint(video: torch.Tensor, mask: torch.Tensor, colour: torch.Tensor) -> torch.Tensor:
    """Set ``video`` (``[N, 3, T, H, W]``) to ``colour`` (``[N, 3]`` or ``[N, 3, T]``) where ``mask`` (``[N, T, H, W]``)."""
    c = colour.view(*colour.shape, *([1] * (5 - colour.dim()))).expand_as(video)
    return torch.where(mask.unsqueeze(1), c, video)


def random_texture(n: int, size: int, gen: torch.Generator) -> torch.Tensor:
    """``float32[n, 3, size, size]``: a random binary pattern of one dark and one light colour per clip.

    The dark colour is uniform in ``[0.05, 0.3]`` and the light one in ``[0.7, 0.95]`` per channel, so
    both stand out from the 0.5 gray background; the pattern has 2x2-pixel cells.
    """
    cells = (size + 1) // 2
    bits = torch.rand((n, 1, cells, cells), generator=gen) < 0.5
    bits = bits.repeat_interleave(2, 2).repeat_interleave(2, 3)[:, :, :size, :size]
    dark = 0.05 + 0.25 * torch.rand((n, 3, 1, 1), generator=gen)
    light = 0.7 + 0.25 * torch.rand((n, 3, 1, 1), generator=gen)
    return torch.where(bits, light, dark)


def paint_texture(
    video: torch.Tensor, x0: torch.Tensor, y0: torch.Tensor, texture: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw ``texture`` (``[N, 3, s, s]``) with top-left corners ``x0, y0`` (``[N, T]``).

    Returns
    -------
    video : torch.Tensor
        The painted clips.
    mask : torch.Tensor
        ``bool[N, T, H, W]``: the pixels the texture covers.
    """
    n, _, s, _ = texture.shape
    _, h, w = CLIP_SIZE
    mask = box_mask(x0, y0, s)
    u = (torch.arange(w).view(1, 1, 1, w) - x0[..., None, None]).clamp(0, s - 1)  # [N, T, 1, W]
    v = (torch.arange(h).view(1, 1, h, 1) - y0[..., None, None]).clamp(0, s - 1)  # [N, T, H, 1]
    flat = (v * s + u).flatten(1)  # [N, T*H*W]
    tex = texture.flatten(2)  # [N, 3, s*s]
    drawn = torch.gather(tex, 2, flat.unsqueeze(1).expand(n, 3, flat.shape[1])).view_as(video)
    return torch.where(mask.unsqueeze(1), drawn, video), mask


def quantize(video: torch.Tensor) -> torch.Tensor:
    """Float clips in [0, 1] -> ``uint8`` (rounded, clamped)."""
    return (video * 255.0).round().clamp(0, 255).to(torch.uint8)
