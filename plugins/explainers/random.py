"""``random``: a seeded uniform random map, the floor of every metric (STEP journal, Sec. IV-B).

The journal's reliability measurement (Eq. 20-21) compares every method against randomly
generated maps; this explainer draws ``U(0, 1)`` per pixel from the recipe's generator and
runs no forward pass.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from removalx.hookspecs import hookimpl
from removalx.stages import Explainer, PluginConfig
from removalx.types import Attribution

if TYPE_CHECKING:
    from removalx.models import VideoClassifier


class RandomConfig(PluginConfig):
    """No settings: the recipe seed fixes the map."""


class RandomMap(Explainer):
    """``values ~ U(0, 1)^{T x H x W}`` from the generator."""

    def __init__(self, config: RandomConfig) -> None:
        self.config = config

    def explain(
        self, model: VideoClassifier, video: Tensor, target: int, generator: torch.Generator
    ) -> Attribution:
        t, h, w = (int(s) for s in video.shape[:3])
        values = torch.rand(t, h, w, generator=generator)
        return Attribution(
            values=values, target=int(target), meta={"method": "random", "n_forward_method": 0}
        )


@hookimpl
def removalx_register_explainers(registry):  # type: ignore[no-untyped-def]
    registry.add("random", RandomConfig, RandomMap)
