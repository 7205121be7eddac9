"""What the report's section renderers share: the :class:`ReportContext` and an :class:`ExperimentView`.

Kept apart from :mod:`removalx.experiments.report` so that the section modules
(:mod:`removalx.experiments.retrain_report`) import it without importing the report itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from removalx.experiments.figures import FigureSink, experiment_slug
from removalx.experiments.runner import Scope, aggregate
from removalx.experiments.store import Store

__all__ = ["ExperimentView", "ReportContext"]


@dataclass
class ReportContext:
    """What every section renderer gets.

    Attributes
    ----------
    store : Store
        The results database, opened read-only.
    figures : FigureSink
        ``figures.add(fig, name, caption)`` inlines a matplotlib figure and writes its PDF/PNG.
    experiments : list of dict
        The experiments recorded in ``store`` (or one "all results" pseudo-experiment).
    max_videos, scale : int
        Options of :func:`write_report`.
    gallery_scale : str
        Option of :func:`write_report`: one of :data:`GALLERY_SCALES`.
    correction : str
        Option of :func:`write_report`: the p-value correction across an experiment's tests
        (:data:`removalx.experiments.multiplicity.CORRECTIONS`).
    """

    store: Store
    figures: FigureSink
    experiments: list[dict[str, Any]]
    max_videos: int = 6
    scale: int = 2
    gallery_scale: str = "shared"
    correction: str = "holm"


@dataclass
class ExperimentView:
    """One experiment and its methods x metrics rows (:func:`~removalx.experiments.runner.aggregate`)."""

    exp: dict[str, Any]
    store: Store = field(repr=False)

    @property
    def methods(self) -> list[str]:
        return list(self.exp["methods"])

    @property
    def metrics(self) -> list[str]:
        return list(self.exp["metrics"])

    @cached_property
    def rows(self) -> list[dict[str, Any]]:
        return aggregate(self.store, self.methods, self.metrics, self.scope)

    @property
    def scope(self) -> Scope:
        """The rows of this experiment's model and data set."""
        return Scope.of_experiment(self.exp)

    @property
    def slug(self) -> str:
        """The experiment's part of its figures' file names (:func:`~removalx.experiments.figures.experiment_slug`)."""
        return experiment_slug(str(self.exp["name"]))
