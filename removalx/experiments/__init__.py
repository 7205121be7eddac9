"""Dataset-scale experiments: ``evaluate``, ``compare``, ``ablate`` and their HTML ``report``.

``evaluate``, ``compare`` and ``ablate`` are also Python functions returning pandas DataFrames
(:mod:`removalx.experiments.api`). Results live in a SQLite file (:class:`~removalx.experiments.store.Store`); runs commit after
every explanation and score and skip stored work on rerun (docs/experiments.md). See
``docs/experiments.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from removalx.experiments.api import Experiment, Options, ablate, compare, evaluate
    from removalx.experiments.store import Store

__all__ = ["Experiment", "Options", "Store", "ablate", "compare", "evaluate"]

_HOMES = {
    "Store": "removalx.experiments.store",
    "Experiment": "removalx.experiments.api",
    "Options": "removalx.experiments.api",
    "ablate": "removalx.experiments.api",
    "compare": "removalx.experiments.api",
    "evaluate": "removalx.experiments.api",
}


def __getattr__(name: str) -> Any:
    """Import the public names (and with them torch) on first use only (PEP 562): the CLI's
    parser imports this package and must come up without torch."""
    if name in _HOMES:
        import importlib

        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'removalx.experiments' has no attribute {name!r}")
