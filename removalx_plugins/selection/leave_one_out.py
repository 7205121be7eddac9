"""``leave_one_out``: each sample removes exactly one feature (all but one kept).

The feature selection of LV LOCO and 3D Sampled Occlusion Sensitivity ("removal-based
video explanations", Sec. 3.2, Table 2 "All but one"). Row ``i`` removes feature ``i``; rows
are computed when read (memory ``O(chunk x F)``, not ``O(F x F)``).
"""

from __future__ import annotations

import torch

from removalx.plugin import ComputedPlan, FeatureSelector, PluginConfig, hookimpl
from removalx_plugins.selection._one_per_feature import one_per_feature_plan


class LeaveOneOutConfig(PluginConfig):
    """No options: the plan has exactly ``F`` samples."""


class LeaveOneOut(FeatureSelector):
    """``Z = 1 - I``: sample ``i`` removes feature ``i`` only."""

    def __init__(self, config: LeaveOneOutConfig) -> None:
        self.config = config

    def max_samples(self, n_features: int) -> int:
        return n_features

    def plan(self, n_features: int, n_samples: int | None, generator: torch.Generator) -> ComputedPlan:
        return one_per_feature_plan("leave_one_out", n_features, n_samples, keep=False)


@hookimpl
def removalx_register_feature_selectors(registry):  # type: ignore[no-untyped-def]
    registry.add("leave_one_out", LeaveOneOutConfig, LeaveOneOut)
