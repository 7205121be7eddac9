"""``per_feature``: ``n = ceil(factor x F)`` samples.

"removal-based video explanations" (Sec. 4.4) used five times the number of regions
(about 5 x 200 = 1000) for 3D LIME, 3D Kernel SHAP and 3D RISE.
"""

from __future__ import annotations

import math

from pydantic import Field

from removalx.plugin import MAX_SAMPLES, ConfigError, FeatureSelector, PluginConfig, SampleSelector, hookimpl


class PerFeatureConfig(PluginConfig):
    """Samples per feature."""

    factor: float = Field(5.0, gt=0, le=MAX_SAMPLES, description="samples per feature")
    minimum: int = Field(
        1, ge=1, le=MAX_SAMPLES, description="lower bound on the number of samples", strict=True
    )


class PerFeature(SampleSelector):
    """``max(minimum, ceil(factor * F))`` samples (capped at what the selection can produce)."""

    def __init__(self, config: PerFeatureConfig) -> None:
        self.config = config

    def n_samples(self, n_features: int, selector: FeatureSelector) -> int | None:
        n = max(self.config.minimum, math.ceil(self.config.factor * n_features))
        cap = selector.max_samples(n_features)
        if cap is not None and n >= cap:
            return None
        if n > MAX_SAMPLES:
            raise ConfigError(
                f"per_feature sample selection: factor {self.config.factor:.6g} x {n_features} features "
                f"= {n:,} samples, more than the limit of {MAX_SAMPLES:,}.",
                f"Use a factor of at most {MAX_SAMPLES / max(n_features, 1):.6g} or fewer features.",
            )
        return n


@hookimpl
def removalx_register_sample_selectors(registry):  # type: ignore[no-untyped-def]
    registry.add("per_feature", PerFeatureConfig, PerFeature)
