"""What ``leave_one_out`` and ``only_one`` share: ``F`` samples, one per feature, computed when read."""

from __future__ import annotations

import torch

from removalx.plugin import ComputedPlan, check_one_per_feature

__all__ = ["one_per_feature_plan"]


def one_per_feature_plan(method: str, n_features: int, n_samples: int | None, keep: bool) -> ComputedPlan:
    """Row ``i`` keeps feature ``i`` only (``keep``: ``Z = I``) or removes it only (``Z = 1 - I``).

    ``n_samples`` must be ``None`` or ``F`` (:func:`check_one_per_feature`, whose errors name ``method``).
    """
    check_one_per_feature(method, n_features, n_samples)
    others, own = (0.0, 1.0) if keep else (1.0, 0.0)

    def make(index: torch.Tensor) -> torch.Tensor:
        z = torch.full((index.shape[0], n_features), others)
        z[torch.arange(index.shape[0]), index] = own
        return z

    return ComputedPlan(n_features, n_features, make, meta={"exhaustive": True})
