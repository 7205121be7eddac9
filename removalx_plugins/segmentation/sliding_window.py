"""``sliding_window``: overlapping cuboid windows, the features of 3D Sampled Occlusion.

"removal-based video explanations" (Sec. 4.4, 3D SOS): the 2D occlusion kernel of
Zeiler & Fergus extended with a temporal dimension and sampled with a stride. Two ways to
place the windows along each axis of size ``D``:

- **relative** (``window`` not given): the window is ``round(D / divisions)`` long and
  ``steps`` window positions fit in one window length; the ``round((D - w) * steps / w) + 1``
  starts are spread evenly from ``0`` to ``D - w``, so every window lies inside the clip.
  With ``D`` divisible by ``divisions * steps`` this is the window ``D / divisions`` with the
  stride ``D / (divisions * steps)``, i.e. ``divisions * steps - steps + 1`` positions (the
  placement of the authors' released code, whose default is ``divisions = (4, 7, 7)``,
  ``steps = (2, 2, 2)``);
- **absolute** (``window`` given, in pixels): windows start at ``k * stride`` for
  ``k = 0 .. ceil((D - window) / stride)``; the last window along an axis is cut at the
  border, so every pixel is covered (the convention of Captum's ``Occlusion``). Without
  ``stride``, the stride is ``max(1, window // steps)``.

``expand`` averages the values of all windows covering a pixel.
"""

from __future__ import annotations

import math
from typing import Annotated

import torch
from pydantic import Field
from torch import Tensor

from removalx.plugin import ConfigError, FeatureSpace, PluginConfig, PluginError, Segmenter, hookimpl

#: A side or count along one axis, bounded at validation.
_Side = Annotated[int, Field(ge=1, le=4096, strict=True)]


#: A length along one axis, bounded at validation.
_Length = Annotated[int, Field(ge=1, le=100_000, strict=True)]


class SlidingWindowConfig(PluginConfig):
    """Window placement along (T, H, W): relative to the clip, or in pixels."""

    window: tuple[_Length, _Length, _Length] | None = Field(
        None,
        description="each in [1, 100,000]; window size in pixels along (T, H, W); None: clip size / divisions",
    )
    stride: tuple[_Length, _Length, _Length] | None = Field(
        None,
        description="each in [1, 100,000]; step in pixels along (T, H, W) (with window); None: window // steps",
    )
    divisions: tuple[_Side, _Side, _Side] = Field(
        (4, 7, 7),
        description="each in [1, 4096]; window = clip size / divisions along (T, H, W), when window is not given",
    )
    steps: tuple[_Side, _Side, _Side] = Field(
        (2, 2, 2),
        description="each in [1, 4096]; window positions per window length along (T, H, W) (1: no overlap)",
    )


def _indicator(size: int, starts: Tensor, ends: Tensor) -> Tensor:
    """``float[n_windows, size]``: 1 where window ``k`` covers position ``i``."""
    pos = torch.arange(size)
    return ((pos[None, :] >= starts[:, None]) & (pos[None, :] < ends[:, None])).float()


def _axis_indicator(size: int, window: int, stride: int) -> Tensor:
    """Absolute placement: starts ``k * stride``, the last window cut at the border."""
    n = math.ceil((size - window) / stride) + 1
    starts = torch.arange(n) * stride
    return _indicator(size, starts, starts + window)


def _relative_indicator(size: int, divisions: int, steps: int) -> Tensor:
    """Relative placement: window ``round(size / divisions)``, starts spread from 0 to ``size - w``."""
    w = min(size, max(1, round(size / divisions)))
    n = min(round((size - w) * steps / w) + 1, size - w + 1)
    if n <= 1:
        starts = torch.zeros(1, dtype=torch.long)
    else:
        starts = torch.round(torch.arange(n, dtype=torch.float64) * (size - w) / (n - 1)).long()
    return _indicator(size, starts, starts + w)


class WindowSpace(FeatureSpace):
    """Features = windows on a 3D grid of positions; masks are products of 1D indicators."""

    def __init__(
        self,
        shape: tuple[int, int, int],
        window: tuple[int, ...] | None = None,
        stride: tuple[int, ...] | None = None,
        *,
        axes: list[Tensor] | None = None,
        meta: dict[str, object] | None = None,
    ) -> None:
        self.shape = shape
        if axes is None:
            if window is None or stride is None:
                raise PluginError(
                    "WindowSpace needs window and stride, or axes.", "Pass both, or the per-axis indicators."
                )
            axes = [_axis_indicator(n, w, s) for n, w, s in zip(shape, window, stride)]
        self.axes = axes
        self.grid = tuple(a.shape[0] for a in self.axes)
        self.n_features = math.prod(self.grid)
        self.labels = None
        self.meta = {"grid": self.grid}
        if window is not None and stride is not None:
            self.meta.update({"window": tuple(window), "stride": tuple(stride)})
        self.meta.update(meta or {})

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

    #: Windows overlap and a stride may skip the border.
    space_provides = frozenset({"hard_masks", "nonempty"})

    def __init__(self, config: SlidingWindowConfig) -> None:
        self.config = config

    def segment(self, video: Tensor, generator: torch.Generator) -> WindowSpace:
        shape = (int(video.shape[0]), int(video.shape[1]), int(video.shape[2]))
        cfg = self.config
        if cfg.window is None:
            if cfg.stride is not None:
                raise ConfigError(
                    "sliding_window: stride (pixels) is given without window.",
                    "Give window and stride in pixels, or neither (divisions and steps place the windows).",
                )
            for axis, n, d, st in zip("THW", shape, cfg.divisions, cfg.steps):
                if not 1 <= d <= n or st < 1:
                    raise ConfigError(
                        f"sliding_window along {axis}: divisions {d} / steps {st} do not fit size {n}.",
                        f"Use 1 <= divisions <= {n} and steps >= 1.",
                    )
            axes = [_relative_indicator(n, d, st) for n, d, st in zip(shape, cfg.divisions, cfg.steps)]
            return WindowSpace(
                shape, axes=axes, meta={"divisions": tuple(cfg.divisions), "steps": tuple(cfg.steps)}
            )
        w = cfg.window
        s = cfg.stride if cfg.stride is not None else tuple(max(1, wi // st) for wi, st in zip(w, cfg.steps))
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
