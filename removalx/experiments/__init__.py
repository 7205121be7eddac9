"""Dataset-scale experiments: ``evaluate``, ``compare``, ``ablate`` and their HTML ``report``.

Results live in a SQLite file (:class:`~removalx.experiments.store.Store`); runs commit after
every explanation and score and skip stored work on rerun (docs/experiments.md). See
``docs/experiments.md``.
"""

from __future__ import annotations

from removalx.experiments.store import Store

__all__ = ["Store"]
