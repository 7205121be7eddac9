"""``bernoulli``: keep each feature independently with probability ``p``.

The feature selection of 3D LIME and 3D RISE ("removal-based video explanations",
Sec. 3.2, Table 2 "Multiple"): about half of the regions are removed in each sample.
"""

from __future__ import annotations

import torch
from pydantic import Field

from removalx.coalitions import MAX_ENUMERATE_FEATURES, all_coalitions
from removalx.hookspecs import hookimpl
from removalx.stages import FeatureSelector, PluginConfig
from removalx.types import SamplePlan


class BernoulliConfig(PluginConfig):
    """Keep probability of each feature."""

    p: float = Field(0.5, gt=0, lt=1, description="probability of keeping a feature")


class Bernoulli(FeatureSelector):
    """Independent Bernoulli(``p``) coalitions; exhaustive = all ``2**F`` coalitions."""

    def __init__(self, config: BernoulliConfig) -> None:
        self.p = config.p

    def max_samples(self, n_features: int) -> int | None:
        return 2**n_features if n_features <= MAX_ENUMERATE_FEATURES else None

    def plan(self, n_features: int, n_samples: int | None, generator: torch.Generator) -> SamplePlan:
        if n_samples is None:
            return SamplePlan(all_coalitions(n_features), meta={"p": self.p, "exhaustive": True})
        z = (torch.rand(n_samples, n_features, generator=generator) < self.p).float()
        return SamplePlan(z, meta={"p": self.p})


@hookimpl
def removalx_register_feature_selectors(registry):  # type: ignore[no-untyped-def]
    registry.add("bernoulli", BernoulliConfig, Bernoulli)
