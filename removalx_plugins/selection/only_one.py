"""``only_one``: each sample keeps exactly one feature and removes all others.

The feature selection of LV Univariate Predictors ("removal-based video explanations",
Sec. 3.2, Table 2 "Only one"). Row ``i`` keeps feature ``i``; rows are computed when read
(memory ``O(chunk x F)``, not ``O(F x F)``).
"""

from __future__ import annotations

import torch

from removalx.plugin import ComputedPlan, FeatureSelector, PluginConfig, hookimpl
from removalx_plugins.selection._one_per_feature import one_per_feature_plan


class OnlyOneConfig(PluginConfig):
    """No options: the plan has exactly ``F`` samples."""


class OnlyOne(FeatureSelector):
    """``Z = I``: sample ``i`` keeps feature ``i`` only."""

    def __init__(self, config: OnlyOneConfig) -> None:
        self.config = config

    def max_samples(self, n_features: int) -> int:
        return n_features

    def plan(self, n_features: int, n_samples: int | None, generator: torch.Generator) -> ComputedPlan:
        return one_per_feature_plan("only_one", n_features, n_samples, keep=True)


@hookimpl
def removalx_register_feature_selectors(registry):  # type: ignore[no-untyped-def]
    registry.add("only_one", OnlyOneConfig, OnlyOne)
