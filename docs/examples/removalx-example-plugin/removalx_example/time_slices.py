"""``time_slices``: one feature per group of consecutive frames (temporal attribution only).

An example of a third-party segmentation plugin: one module, one entry-point line.
"""

from __future__ import annotations

import torch
from pydantic import Field

from removalx.plugin import PartitionSpace, PluginConfig, Segmenter, hookimpl


class TimeSlicesConfig(PluginConfig):
    """How many frames each feature spans."""

    frames_per_slice: int = Field(2, gt=0)


class TimeSlices(Segmenter):
    """Feature ``i`` = frames ``[i * k, (i + 1) * k)``, the whole frame area."""

    def __init__(self, config: TimeSlicesConfig) -> None:
        self.k = config.frames_per_slice

    def segment(self, video: torch.Tensor, generator: torch.Generator) -> PartitionSpace:
        t, h, w = video.shape[:3]
        labels = (torch.arange(t) // self.k).view(t, 1, 1).expand(t, h, w)
        return PartitionSpace(labels.contiguous())


@hookimpl
def removalx_register_segmenters(registry):  # type: ignore[no-untyped-def]
    registry.add("time_slices", TimeSlicesConfig, TimeSlices)
