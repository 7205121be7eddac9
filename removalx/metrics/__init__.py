"""Metrics of attributions: faithfulness (insertion / deletion AUC, minimal masks, SM),
localisation (pointing games) and the reliability of a metric (alpha).

The insertion / deletion settings of each paper are bundled as presets
(:mod:`removalx.metrics.presets`: ``removal``, ``step``, ``aosa``, ``eccvw``).

The metric *plugins* (``removalx_plugins.metrics``) wrap these functions as the ``metric``
stage (:class:`removalx.core.stages.Metric`); the functions are usable on their own.
See ``docs/metrics.md``.
"""

from __future__ import annotations

from removalx.metrics.axiomatic import completeness, input_invariance
from removalx.metrics.complexity import complexity, effective_complexity, sparseness
from removalx.metrics.dataset_mean import dataset_mean
from removalx.metrics.faithfulness import faithfulness_correlation, infidelity, irof, sensitivity_n
from removalx.metrics.localization import bounding_boxes, pooled_hit_rate, spatial_pointing, temporal_pointing
from removalx.metrics.perturbation import (
    Curve,
    auc,
    cached_curve,
    minimal_mask,
    perturbation_curve,
    substrate,
)
from removalx.metrics.presets import DEFAULT_PRESET, PRESETS, preset_settings, settings_line, settings_lines
from removalx.metrics.randomisation import emprt, mprt, random_logit
from removalx.metrics.reliability import reliability_alpha, spearman
from removalx.metrics.road import noisy_linear_imputation, road
from removalx.metrics.robustness import explanation_robustness, robustness_ratios
from removalx.metrics.saliency import saliency_metric
from removalx.metrics.similarity import pearson, ssim, top_k_intersection
from removalx.metrics.units import (
    level_labels,
    patch_labels,
    superpixel_labels,
    supervoxel_labels,
    unit_labels,
)

__all__ = [
    "DEFAULT_PRESET",
    "PRESETS",
    "Curve",
    "auc",
    "bounding_boxes",
    "cached_curve",
    "completeness",
    "complexity",
    "dataset_mean",
    "effective_complexity",
    "emprt",
    "ensure_metric_plugins",
    "explanation_robustness",
    "faithfulness_correlation",
    "infidelity",
    "input_invariance",
    "irof",
    "level_labels",
    "minimal_mask",
    "mprt",
    "noisy_linear_imputation",
    "patch_labels",
    "pearson",
    "perturbation_curve",
    "pooled_hit_rate",
    "preset_settings",
    "random_logit",
    "reliability_alpha",
    "road",
    "robustness_ratios",
    "saliency_metric",
    "sensitivity_n",
    "settings_line",
    "settings_lines",
    "sparseness",
    "spatial_pointing",
    "spearman",
    "ssim",
    "substrate",
    "superpixel_labels",
    "supervoxel_labels",
    "temporal_pointing",
    "top_k_intersection",
    "unit_labels",
]

#: The built-in metric plugin modules (entry points ``metrics-<module>``).
BUILTIN_METRIC_MODULES = (
    "removalx_plugins.metrics.insertion_deletion",
    "removalx_plugins.metrics.minimal_mask",
    "removalx_plugins.metrics.saliency",
    "removalx_plugins.metrics.pointing_game",
    "removalx_plugins.metrics.robustness",
    "removalx_plugins.metrics.complexity",
    "removalx_plugins.metrics.faithfulness",
    "removalx_plugins.metrics.road",
)


def ensure_metric_plugins(registry=None):  # type: ignore[no-untyped-def]
    """Return ``registry`` (default: the global one) with the built-in metrics registered.

    A no-op once the ``metrics-*`` entry points are installed; until then (or in a source
    checkout that was not reinstalled) it registers the built-in metric modules directly.
    """
    import importlib

    from removalx.core.registry import get_registry

    reg = registry or get_registry()
    for name in BUILTIN_METRIC_MODULES:
        module = importlib.import_module(name)
        if not reg.pm.is_registered(module):
            reg.register_module(module, source="removalx")
    return reg
