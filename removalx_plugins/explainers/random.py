"""``random``: a seeded random map, the floor of every metric (STEP journal, Sec. IV-B).

The journal's reliability measurement (Eq. 20-21) compares every method against randomly
generated maps without saying how they are drawn. This explainer draws one value per pixel
from the recipe's generator and runs no forward pass: ``U(0, 1)`` (``distribution="uniform"``,
the plugin default) or ``N(0, 1)`` (``"normal"``: the STEP authors' evaluation code,
``torch.randn`` per pixel, which the ``random`` recipe sets). Both rank the pixels in a
uniformly random order; they differ only where values are aggregated (e.g. the mean over a
patch or superpixel).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import torch
from pydantic import Field
from torch import Tensor

from removalx.plugin import Attribution, Explainer, PluginConfig, hookimpl

if TYPE_CHECKING:
    from removalx.plugin import VideoClassifier


class RandomConfig(PluginConfig):
    """The distribution of the per-pixel values; the recipe seed fixes the map."""

    distribution: Literal["uniform", "normal"] = Field(
        "uniform", description="U(0, 1) or N(0, 1) per pixel (STEP authors' evaluation code: normal)"
    )


class RandomMap(Explainer):
    """``values ~ U(0, 1)`` or ``N(0, 1)`` i.i.d. per pixel, from the generator."""

    def __init__(self, config: RandomConfig) -> None:
        self.config = config

    def explain(
        self, model: VideoClassifier, video: Tensor, target: int, generator: torch.Generator
    ) -> Attribution:
        t, h, w = (int(s) for s in video.shape[:3])
        draw = torch.randn if self.config.distribution == "normal" else torch.rand
        values = draw(t, h, w, generator=generator)
        meta = {"method": "random", "n_forward_method": 0, "distribution": self.config.distribution}
        return Attribution(values=values, target=int(target), meta=meta)


@hookimpl
def removalx_register_explainers(registry):  # type: ignore[no-untyped-def]
    registry.add("random", RandomConfig, RandomMap)
