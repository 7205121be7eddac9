"""``noise``: fill removed pixels with random noise.

A removal option of "removal-based video explanations" (Sec. 3.4). The noise of sample
``i`` is a hash of ``(seed, i, pixel)``: identical whatever the batch size or device.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from torch import Tensor

from removalx.plugin import FeatureSpace, PluginConfig, Removal, hash_normal, hash_uniform, hookimpl


class NoiseConfig(PluginConfig):
    """Uniform noise in [0, 1], or the clip plus Gaussian noise of ``sigma``."""

    kind: Literal["uniform", "gaussian"] = "uniform"
    sigma: float = Field(
        0.2,
        gt=0,
        description="std of the Gaussian noise added to the clip; at most 10 (pixel values are in [0, 1])",
        le=10,
    )


class Noise(Removal):
    """Per-sample random fill."""

    def __init__(self, config: NoiseConfig) -> None:
        self.config = config
        self.seed = 0

    def prepare(self, video: Tensor, space: FeatureSpace, seed: int) -> None:
        self.seed = seed

    def fill(self, video: Tensor, keep: Tensor, index: Tensor) -> Tensor:
        shape = tuple(video.shape)
        if self.config.kind == "uniform":
            return hash_uniform(self.seed, index, shape, stream=21).to(video.dtype)
        noise = hash_normal(self.seed, index, shape, stream=22).to(video.dtype)
        return (video + self.config.sigma * noise).clamp_(0.0, 1.0)


@hookimpl
def removalx_register_removals(registry):  # type: ignore[no-untyped-def]
    registry.add("noise", NoiseConfig, Noise)
