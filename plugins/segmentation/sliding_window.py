"""``sliding_window``: overlapping cuboid windows, the features of 3D Sampled Occlusion.

"removal-based video explanations" (Sec. 4.4, 3D SOS): the 2D occlusion kernel of
Zeiler & Fergus extended with a temporal dimension and sampled with a stride. Windows
start at ``k * stride`` for ``k = 0 .. ceil((D - window) / stride)``; the last window along
an axis is cut at the border, so every pixel is covered (the convention of Captum's
``Occlusion``). ``expand`` averages the values of all windows covering a pixel.
"""

from __future__ import annotations

import math

import torch
from pydantic import Field
from torch import Tensor

from removalx.errors import ConfigError
from removalx.hookspecs import hookimpl
from removalx.stages import PluginConfig, Segmenter
from removalx.types import FeatureSpace


class SlidingWindowConfig(PluginConfig):
    """Window and stride along (T, H, W)."""

    window: tuple[int, int, int] = Field((4, 16, 16), description="window size along (T, H, W)")
    stride: tuple[int, int, int] = Field((2, 8, 8), description="step along (T, H, W)")


def _axis_indicator(size: int, window: int, stride: int) -> Tensor:
    """``float[n_windows, size]``: 1 where window ``k`` covers position ``i``."""
    n = math.ceil((size - window) / stride) + 1
    starts = torch.arange(n) * stride
    pos = torch.arange(size)
    return ((pos[None, :] >= starts[:, None]) & (pos[None, :] < starts[:, None] + window)).float()


class WindowSpace(FeatureSpace):
    """Features = windows on a 3D grid of positions; masks are products of 1D indicators."""

    def __init__(self, shape: tuple[int, int, int], window: tuple[int, ...], stride: tuple[int, ...]) -> None:
        self.shape = shape
        self.axes = [_axis_indicator(n, w, s) for n, w, s in zip(shape, window, stride)]
        self.grid = tuple(a.shape[0] for a in self.axes)
        self.n_features = math.prod(self.grid)
        self.labels = None
        self.meta = {"grid": self.grid, "window": tuple(window), "stride": tuple(stride)}
        self._window, self._stride = tuple(window), tuple(stride)

    def _spread(self, v: Tensor) -> Tensor:
        """``[B, nt, nh, nw] -> [B, T, H, W]``: sum of window values covering each pixel.

        Three small matrix products (one per axis), the last one written straight into
        the ``[B, T, H * W]`` layout, so no intermediate of the clip's size is permuted.
        """
        a, b, c = self.axes
        n, nt = v.shape[0], self.grid[0]
        t, h, w = self.shape
        x = v @ c  # [B, nt, nh, W]
        x = b.T @ x  # [B, nt, H, W]
        return (a.T @ x.reshape(n, nt, h * w)).view(n, t, h, w)

    def render(self, z: Tensor, index: Tensor | None = None) -> Tensor:
        removed = self._spread((1.0 - z).view(z.shape[0], *self.grid))
        return removed.clamp_(max=1.0).neg_().add_(1.0)  # 1 - min(count, 1), in place

    def expand(self, values: Tensor) -> Tensor:
        v = values.to(self.axes[0].device, torch.float32).view(1, *self.grid)
        num = self._spread(v)[0]
        den = self._spread(torch.ones_like(v))[0]
        return torch.where(den > 0, num / den.clamp_min(1.0), torch.zeros_like(num))

    def to(self, device: torch.device | str) -> WindowSpace:
        out = WindowSpace.__new__(WindowSpace)
        out.__dict__.update(self.__dict__)
        out.axes = [a.to(device) for a in self.axes]
        return out


class SlidingWindow(Segmenter):
    """Overlapping cuboid windows (one feature per window position)."""

    def __init__(self, config: SlidingWindowConfig) -> None:
        self.config = config

    def segment(self, video: Tensor, generator: torch.Generator) -> WindowSpace:
        shape = (int(video.shape[0]), int(video.shape[1]), int(video.shape[2]))
        w, s = self.config.window, self.config.stride
        for axis, n, wi, si in zip("THW", shape, w, s):
            if not 1 <= wi <= n or si < 1:
                raise ConfigError(
                    f"sliding_window along {axis}: window {wi} / stride {si} do not fit size {n}.",
                    f"Use 1 <= window <= {n} and stride >= 1.",
                )
        return WindowSpace(shape, w, s)



@hookimpl
def removalx_register_segmenters(registry):  # type: ignore[no-untyped-def]
    registry.add("sliding_window", SlidingWindowConfig, SlidingWindow)
