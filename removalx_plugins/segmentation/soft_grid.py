"""``soft_grid``: RISE's low-resolution grid, upsampled with a random shift per sample.

Petsiuk et al.'s RISE masks, as extended to video in "removal-based video explanations"
(Sec. 3.4 and Table 2, 3D RISE): a binary ``cells`` grid is upsampled trilinearly to
``(cells + 1) * cell_size`` and cropped to the clip at a random offset in
``[0, cell_size)`` along each axis, giving soft masks with a transparency gradient. The
offset of sample ``i`` is a hash of ``(seed, i)``, so it does not depend on batching.
"""

from __future__ import annotations

import math
from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from removalx.plugin import ConfigError, FeatureSpace, PluginConfig, Segmenter, hash_uniform, hookimpl

#: A side or count along one axis, bounded at validation.
_Side = Annotated[int, Field(ge=1, le=4096, strict=True)]


class SoftGridConfig(PluginConfig):
    """Grid cells along (T, H, W) and whether to shift each sample at random."""

    cells: tuple[_Side, _Side, _Side] = Field(
        (4, 7, 7), description="each in [1, 4096]; grid cells along (T, H, W)"
    )
    random_shift: bool = True


class SoftGridSpace(FeatureSpace):
    """``F = prod(cells)`` soft, overlapping features."""

    def __init__(
        self, shape: tuple[int, int, int], cells: tuple[int, int, int], seed: int, shift: bool
    ) -> None:
        self.shape = shape
        self.cells = cells
        self.cell_size = tuple(math.ceil(n / c) for n, c in zip(shape, cells))
        self.up_size = tuple((c + 1) * s for c, s in zip(cells, self.cell_size))
        self.n_features = math.prod(cells)
        self.labels = None
        self.seed = seed
        self.random_shift = shift
        self.meta = {"cells": cells, "cell_size": self.cell_size}
        self.device = torch.device("cpu")

    def _shifts(self, index: Tensor) -> Tensor:
        size = torch.tensor(self.cell_size, device=index.device)
        if not self.random_shift:
            return (size // 2).expand(index.shape[0], 3)
        u = hash_uniform(self.seed, index, (3,), stream=11)
        return (u * size).long().clamp_max(size - 1)

    def _upsample_crop(self, grid: Tensor, shifts: Tensor) -> Tensor:
        b = grid.shape[0]
        up = F.interpolate(
            grid.view(b, 1, *self.cells), size=self.up_size, mode="trilinear", align_corners=False
        )[:, 0]
        t, h, w = self.shape
        dev = grid.device
        ti = shifts[:, 0, None] + torch.arange(t, device=dev)
        hi = shifts[:, 1, None] + torch.arange(h, device=dev)
        wi = shifts[:, 2, None] + torch.arange(w, device=dev)
        bi = torch.arange(b, device=dev)
        return up[bi[:, None, None, None], ti[:, :, None, None], hi[:, None, :, None], wi[:, None, None, :]]

    def render(self, z: Tensor, index: Tensor | None = None) -> Tensor:
        if index is None:
            index = torch.arange(z.shape[0], device=z.device)
        return self._upsample_crop(z.float(), self._shifts(index.to(z.device)))

    def expand(self, values: Tensor) -> Tensor:
        v = values.float().view(1, -1)
        centre = (torch.tensor(self.cell_size, device=v.device) // 2)[None]
        return self._upsample_crop(v, centre)[0]


class SoftGrid(Segmenter):
    """RISE grid masks with a random shift per sample."""

    #: Upsampled soft masks; removing every cell removes every pixel. Cells of the grid's
    #: extra (shift) row can fall outside the clip when its size is not a multiple of cells.
    space_provides = frozenset({"covering"})

    def __init__(self, config: SoftGridConfig) -> None:
        self.config = config

    def segment(self, video: Tensor, generator: torch.Generator) -> SoftGridSpace:
        shape = (int(video.shape[0]), int(video.shape[1]), int(video.shape[2]))
        if any(not 1 <= c <= n for c, n in zip(self.config.cells, shape)):
            raise ConfigError(
                f"soft_grid cells {tuple(self.config.cells)} do not fit a clip of shape {shape}.",
                "Each cell count must be between 1 and the clip's size along that axis.",
            )
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator).item())
        return SoftGridSpace(shape, tuple(self.config.cells), seed, self.config.random_shift)  # type: ignore[arg-type]


@hookimpl
def removalx_register_segmenters(registry):  # type: ignore[no-untyped-def]
    registry.add("soft_grid", SoftGridConfig, SoftGrid)
