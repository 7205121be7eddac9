"""``fixed``: a user-chosen number of samples.

Sample selection of 3D LIME, 3D Kernel SHAP and 3D RISE ("removal-based video
explanations", Sec. 3.3, Table 2: 1000 samples).
"""

from __future__ import annotations

from pydantic import Field

from removalx.plugin import MAX_SAMPLES, FeatureSelector, PluginConfig, SampleSelector, hookimpl


class FixedConfig(PluginConfig):
    """Number of perturbed samples."""

    n_samples: int = Field(
        1000,
        gt=0,
        le=MAX_SAMPLES,
        description=f"number of perturbed clips (at most {MAX_SAMPLES:,})",
        strict=True,
    )


class Fixed(SampleSelector):
    """Always ``n_samples`` (capped at what the feature selection can produce)."""

    def __init__(self, config: FixedConfig) -> None:
        self.n = config.n_samples

    def n_samples(self, n_features: int, selector: FeatureSelector) -> int | None:
        cap = selector.max_samples(n_features)
        return self.n if cap is None or self.n < cap else None


@hookimpl
def removalx_register_sample_selectors(registry):  # type: ignore[no-untyped-def]
    registry.add("fixed", FixedConfig, Fixed)
