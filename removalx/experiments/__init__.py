"""Dataset-scale experiments: ``evaluate``, ``compare``, ``ablate`` and their HTML ``report``.

Results live in a SQLite file (:class:`~removalx.experiments.store.Store`); runs commit after
every explanation and score and skip stored work on rerun (docs/experiments.md). See
``docs/experiments.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from removalx.experiments.store import Store

__all__ = ["Store"]


def __getattr__(name: str) -> Any:
    """Import :class:`Store` (and with it torch) on first use only (PEP 562): the CLI's parser
    imports this package and must come up without torch."""
    if name == "Store":
        from removalx.experiments.store import Store

        return Store
    raise AttributeError(f"module 'removalx.experiments' has no attribute {name!r}")
