"""``exhaustive``: every sample the feature selection implies.

One per feature for leave-one-out / only-one (LV LOCO, LV Univariate Predictors,
3D SOS in "removal-based video explanations", Sec. 3.3), every coalition for Kernel SHAP
or Bernoulli selections over few features.
"""

from __future__ import annotations

from removalx.plugin import ConfigError, FeatureSelector, PluginConfig, SampleSelector, hookimpl


class ExhaustiveConfig(PluginConfig):
    """No options."""


class Exhaustive(SampleSelector):
    """All samples of the feature selection (errors if that is unbounded)."""

    def __init__(self, config: ExhaustiveConfig) -> None:
        self.config = config

    def n_samples(self, n_features: int, selector: FeatureSelector) -> int | None:
        if selector.max_samples(n_features) is None:
            raise ConfigError(
                f"exhaustive sample selection: {type(selector).__name__} has no finite set of "
                f"samples for {n_features} features.",
                "Use sample_selection: {name: fixed, n_samples: N} or fewer features.",
            )
        return None


@hookimpl
def removalx_register_sample_selectors(registry):  # type: ignore[no-untyped-def]
    registry.add("exhaustive", ExhaustiveConfig, Exhaustive)
