"""``per_feature``: ``n = ceil(factor x F)`` samples.

"removal-based video explanations" (Sec. 4.4) used five times the number of regions
(about 5 x 200 = 1000) for 3D LIME, 3D Kernel SHAP and 3D RISE.
"""

from __future__ import annotations

import math

from pydantic import Field

from removalx.hookspecs import hookimpl
from removalx.stages import FeatureSelector, PluginConfig, SampleSelector


class PerFeatureConfig(PluginConfig):
    """Samples per feature."""

    factor: float = Field(5.0, gt=0, description="samples per feature")
    minimum: int = Field(1, ge=1, description="lower bound on the number of samples")


class PerFeature(SampleSelector):
    """``max(minimum, ceil(factor * F))`` samples (capped at what the selection can produce)."""

    def __init__(self, config: PerFeatureConfig) -> None:
        self.config = config

    def n_samples(self, n_features: int, selector: FeatureSelector) -> int | None:
        n = max(self.config.minimum, math.ceil(self.config.factor * n_features))
        cap = selector.max_samples(n_features)
        return n if cap is None or n < cap else None


@hookimpl
def removalx_register_sample_selectors(registry):  # type: ignore[no-untyped-def]
    registry.add("per_feature", PerFeatureConfig, PerFeature)
