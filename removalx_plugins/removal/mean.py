"""``mean``: fill every removed region with its own mean colour.

The removal of LIME's image explainer ("removal-based video explanations", Sec. 3.4:
"the mean color of the occluded region"). Needs a partition (``space.labels``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from removalx.plugin import ConfigError, FeatureSpace, PluginConfig, Removal, hookimpl


class MeanConfig(PluginConfig):
    """No options."""


class Mean(Removal):
    """``fill[p] = mean colour of the region of p``, computed once per clip."""

    #: Region means need space.labels.
    space_requires = frozenset({"partition"})

    def __init__(self, config: MeanConfig) -> None:
        self._fill: Tensor | None = None

    def prepare(self, video: Tensor, space: FeatureSpace, seed: int) -> None:
        if space is None or space.labels is None:
            raise ConfigError(
                f"mean removal needs a partition of the clip (segmentation with labels); "
                f"{type(space).__name__} has overlapping or soft features.",
                "Use slic3d or grid3d segmentation, or removal constant/blur.",
            )
        labels = space.labels.to(video.device).reshape(-1)
        c = video.shape[-1]
        flat = video.reshape(-1, c)
        sums = torch.zeros(space.n_features, c, device=video.device, dtype=video.dtype)
        sums.index_add_(0, labels, flat)
        counts = torch.bincount(labels, minlength=space.n_features).clamp_min(1).to(video.dtype)
        self._fill = (sums / counts[:, None])[labels].view(video.shape)

    def fill(self, video: Tensor, keep: Tensor, index: Tensor) -> Tensor:
        if self._fill is None:
            raise ConfigError(
                "mean removal used before prepare().", "Call prepare(video, space, seed) first."
            )
        return self._fill


@hookimpl
def removalx_register_removals(registry):  # type: ignore[no-untyped-def]
    registry.add("mean", MeanConfig, Mean)
