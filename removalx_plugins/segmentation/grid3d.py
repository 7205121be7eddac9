"""``grid3d``: partition the clip into a regular grid of cuboids.

The segmentation of 3D RISE and 3D Sampled Occlusion Sensitivity in "removal-based video
explanations" (Sec. 3.1, Fig. 2, Table 2): the 2D grid of RISE with a temporal dimension.
"""

from __future__ import annotations

from typing import Annotated

import torch
from pydantic import Field
from torch import Tensor

from removalx.plugin import ConfigError, PartitionSpace, PluginConfig, Segmenter, hookimpl

#: A side or count along one axis, bounded at validation.
_Side = Annotated[int, Field(ge=1, le=4096, strict=True)]


class Grid3DConfig(PluginConfig):
    """Number of cells along time, height and width."""

    cells: tuple[_Side, _Side, _Side] = Field(
        (4, 7, 7), description="each in [1, 4096]; cells along (T, H, W)"
    )


def grid_labels(shape: tuple[int, int, int], cells: tuple[int, int, int], device: torch.device) -> Tensor:
    """``long[T, H, W]`` cell index of every pixel for a ``cells`` grid (near-equal cells)."""
    idx = [
        torch.div(torch.arange(n, device=device) * c, n, rounding_mode="floor") for n, c in zip(shape, cells)
    ]
    _, ch, cw = cells
    return (idx[0][:, None, None] * ch + idx[1][None, :, None]) * cw + idx[2][None, None, :]


class Grid3D(Segmenter):
    """Split ``T x H x W`` into ``cells[0] x cells[1] x cells[2]`` near-equal cuboids."""

    #: Cuboids label every pixel once.
    space_provides = frozenset({"partition"})

    def __init__(self, config: Grid3DConfig) -> None:
        self.config = config

    def segment(self, video: Tensor, generator: torch.Generator) -> PartitionSpace:
        shape = tuple(int(s) for s in video.shape[:3])
        cells = self.config.cells
        if any(c < 1 or c > n for c, n in zip(cells, shape)):
            raise ConfigError(
                f"grid3d cells {tuple(cells)} do not fit a clip of shape (T, H, W) = {shape}.",
                "Each cell count must be between 1 and the clip's size along that axis.",
            )
        labels = grid_labels(shape, cells, video.device)  # type: ignore[arg-type]
        return PartitionSpace(labels, meta={"cells": tuple(cells)})


@hookimpl
def removalx_register_segmenters(registry):  # type: ignore[no-untyped-def]
    registry.add("grid3d", Grid3DConfig, Grid3D)
