"""``leave_one_out``: each sample removes exactly one feature (all but one kept).

The feature selection of LV LOCO and 3D Sampled Occlusion Sensitivity ("removal-based
video explanations", Sec. 3.2, Table 2 "All but one"). Row ``i`` removes feature ``i``; rows
are computed when read (memory ``O(chunk x F)``, not ``O(F x F)``).
"""

from __future__ import annotations

import torch

from removalx.coalitions import check_one_per_feature
from removalx.hookspecs import hookimpl
from removalx.plans import ComputedPlan
from removalx.stages import FeatureSelector, PluginConfig


class LeaveOneOutConfig(PluginConfig):
    """No options: the plan has exactly ``F`` samples."""


class LeaveOneOut(FeatureSelector):
    """``Z = 1 - I``: sample ``i`` removes feature ``i`` only."""

    def __init__(self, config: LeaveOneOutConfig) -> None:
        self.config = config

    def max_samples(self, n_features: int) -> int:
        return n_features

    def plan(self, n_features: int, n_samples: int | None, generator: torch.Generator) -> ComputedPlan:
        check_one_per_feature("leave_one_out", n_features, n_samples)

        def make(index: torch.Tensor) -> torch.Tensor:
            z = torch.ones(index.shape[0], n_features)
            z[torch.arange(index.shape[0]), index] = 0.0
            return z

        return ComputedPlan(n_features, n_features, make, meta={"exhaustive": True})


@hookimpl
def removalx_register_feature_selectors(registry):  # type: ignore[no-untyped-def]
    registry.add("leave_one_out", LeaveOneOutConfig, LeaveOneOut)
