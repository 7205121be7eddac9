"""Dataset-scale experiments: ``evaluate``, ``compare``, ``ablate`` and their HTML ``report``.

``evaluate``, ``compare`` and ``ablate`` are also Python functions returning pandas DataFrames
(:mod:`removalx.experiments.api`). Results live in a SQLite file (:class:`~removalx.experiments.store.Store`); runs commit after
every explanation and score and skip stored work on rerun (docs/experiments.md). See
``docs/experiments.md``.
"""

from __future__ import annotations

from removalx.experiments.api import Experiment, Options, ablate, compare, evaluate
from removalx.experiments.store import Store

__all__ = ["Experiment", "Options", "Store", "ablate", "compare", "evaluate"]
