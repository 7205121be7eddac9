"""``blur``: replace removed pixels by a Gaussian-blurred copy of the clip.

"removal-based video explanations" (Sec. 3.4), after Fong & Vedaldi's blur perturbation:
removes detail while keeping the colours of the region.
"""

from __future__ import annotations

from pydantic import Field
from torch import Tensor

from removalx.plugin import FeatureSpace, PluginConfig, Removal, blur_frames, hookimpl


class BlurConfig(PluginConfig):
    """Spatial standard deviation of the per-frame Gaussian blur, in pixels."""

    sigma: float = Field(
        10.0, gt=0, description="Gaussian sigma in pixels (per frame); at most 1000", le=1000
    )


class Blur(Removal):
    """``fill = blur(video)``, computed once per clip."""

    def __init__(self, config: BlurConfig) -> None:
        self.sigma = config.sigma
        self._fill: Tensor | None = None

    def prepare(self, video: Tensor, space: FeatureSpace, seed: int) -> None:
        self._fill = blur_frames(video, self.sigma)

    def fill(self, video: Tensor, keep: Tensor, index: Tensor) -> Tensor:
        if self._fill is None or self._fill.shape != video.shape:
            self._fill = blur_frames(video, self.sigma)
        return self._fill


@hookimpl
def removalx_register_removals(registry):  # type: ignore[no-untyped-def]
    registry.add("blur", BlurConfig, Blur)
