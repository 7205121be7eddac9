"""The substrate colour of a run's perturbation metrics, and what a stored score says about it.

STEP (journal Sec. IV-A, Eq. 12) removes to "the mean of the training data" in both games: the
``step`` preset's ``fill: dataset_mean``. A metric config that leaves ``fill_value`` out falls
back to the model's normalisation mean (:mod:`removalx.metrics.perturbation`) -- unless the run
knows its dataset: ``evaluate``, ``compare`` and ``ablate`` then compute the dataset's mean colour
once (:func:`removalx.metrics.dataset_mean`, cached) and give it to every such metric
(:func:`with_dataset_mean`). Each score then records where its colour came from, and an
explicitly given ``fill_value`` is listed among the settings the user set
(:func:`recorded_details`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from removalx.core.registry import Registry, get_registry

__all__ = ["DATASET_MEAN_SOURCE", "needs_dataset_mean", "recorded_details", "with_dataset_mean"]

#: ``fill_source`` of a colour the run computed from its dataset (``dataset_mean(DATASET KEY)``).
DATASET_MEAN_SOURCE = "dataset_mean({})"


def needs_dataset_mean(spec: Any, registry: Registry | None = None) -> bool:
    """Whether the metric of ``spec`` removes to ``dataset_mean`` with no colour given.

    ``spec`` is a :class:`~removalx.experiments.runner.MetricSpec`; its config is resolved by its
    plugin (a preset's ``fill`` counts, e.g. ``preset: step``).
    """
    if spec.config.get("fill_value") is not None:
        return False
    reg = registry or get_registry()
    cfg = getattr(reg.get("metric", spec.name).make(spec.config), "config", None)
    return getattr(cfg, "fill", None) == "dataset_mean" and getattr(cfg, "fill_value", None) is None


def with_dataset_mean(
    specs: Sequence[Any],
    mean: Callable[[], Sequence[float]],
    dataset: str,
    registry: Registry | None = None,
) -> list[Any]:
    """``specs`` with the dataset's mean colour as ``fill_value`` of the metrics that need it.

    Parameters
    ----------
    specs : sequence of MetricSpec
        The run's metrics.
    mean : callable
        Computes the dataset's per-channel mean colour (called at most once, only when a metric
        needs it).
    dataset : str
        The dataset's key, recorded as the colour's ``fill_source``.

    Returns
    -------
    list of MetricSpec
        New specs (``fill_value`` in the config, ``fill_source`` set) where needed, the others as given.
    """
    out: list[Any] = []
    colour: list[float] | None = None
    for spec in specs:
        if not needs_dataset_mean(spec, registry):
            out.append(spec)
            continue
        if colour is None:
            colour = [round(float(v), 6) for v in mean()]
        config = {**spec.config, "fill_value": list(colour)}
        out.append(dataclasses.replace(spec, config=config, fill_source=DATASET_MEAN_SOURCE.format(dataset)))
    return out


def recorded_details(spec: Any, details: Mapping[str, Any]) -> dict[str, Any]:
    """A metric result as the store keeps it: the colour's source and the user's ``fill_value``.

    A colour the run computed (:func:`with_dataset_mean`) is labelled ``dataset_mean(DATASET)`` in
    the result's ``settings``; a ``fill_value`` the user gave is added to its ``overrides`` (the
    settings the user set, which the metric itself lists from the preset's fields only).
    """
    out = dict(details)
    source = getattr(spec, "fill_source", None)
    settings = out.get("settings")
    if source is not None and isinstance(settings, Mapping) and "fill_source" in settings:
        out["settings"] = {**settings, "fill_source": source}
    if source is None and spec.config.get("fill_value") is not None and "overrides" in out:
        over = list(out.get("overrides") or [])
        if "fill_value" not in over:
            out["overrides"] = [*over, "fill_value"]
    return out
