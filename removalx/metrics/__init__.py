"""Metrics of attributions: faithfulness (insertion / deletion AUC, minimal masks, SM),
localisation (pointing games) and the reliability of a metric (alpha).

The metric *plugins* (``removalx_plugins.metrics``) wrap these functions as the ``metric``
stage (:class:`removalx.stages.Metric`); the functions are usable on their own.
See ``docs/metrics.md``.
"""

from __future__ import annotations

from removalx.metrics.localization import bounding_boxes, spatial_pointing, temporal_pointing
from removalx.metrics.perturbation import (
    Curve,
    auc,
    cached_curve,
    minimal_mask,
    patch_labels,
    perturbation_curve,
    substrate,
    unit_labels,
)
from removalx.metrics.reliability import reliability_alpha, spearman
from removalx.metrics.saliency import saliency_metric

__all__ = [
    "Curve",
    "auc",
    "bounding_boxes",
    "cached_curve",
    "ensure_metric_plugins",
    "minimal_mask",
    "patch_labels",
    "perturbation_curve",
    "reliability_alpha",
    "saliency_metric",
    "spatial_pointing",
    "spearman",
    "substrate",
    "temporal_pointing",
    "unit_labels",
]

#: The built-in metric plugin modules (entry points ``metrics-<module>``).
BUILTIN_METRIC_MODULES = (
    "removalx_plugins.metrics.insertion_deletion",
    "removalx_plugins.metrics.minimal_mask",
    "removalx_plugins.metrics.saliency",
    "removalx_plugins.metrics.pointing_game",
)


def ensure_metric_plugins(registry=None):  # type: ignore[no-untyped-def]
    """Return ``registry`` (default: the global one) with the built-in metrics registered.

    A no-op once the ``metrics-*`` entry points are installed; until then (or in a source
    checkout that was not reinstalled) it registers the built-in metric modules directly.
    """
    import importlib

    from removalx.registry import get_registry

    reg = registry or get_registry()
    for name in BUILTIN_METRIC_MODULES:
        module = importlib.import_module(name)
        if not reg.pm.is_registered(module):
            reg.register_module(module, source="removalx")
    return reg
