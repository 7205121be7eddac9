"""Executors of a dataset-scale run: where units are computed (docs/scaling.md).

An executor has ``run(units) -> iterator of (unit, result)``; the driver writes every result to
the store as it arrives. :class:`LocalExecutor` computes the units one after the other in this
process; :func:`make_executor` also builds the Ray executor
(:mod:`removalx.experiments.ray_executor`, the ``ray`` extra).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from removalx.errors import ConfigError
from removalx.experiments.units import RunContext, Unit, UnitResult, compute_unit

__all__ = ["EXECUTORS", "LocalExecutor"]

#: Names accepted by ``--executor``.
EXECUTORS = ("local", "ray")


class LocalExecutor:
    """Compute units in this process, in order, with one loaded model."""

    def __init__(self, context: RunContext) -> None:
        self.context = context

    def run(self, units: Iterable[Unit]) -> Iterator[tuple[Unit, UnitResult]]:
        for unit in units:
            yield unit, compute_unit(self.context, unit)

    def close(self) -> None:
        """Nothing to release."""

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def check_executor(name: str) -> str:
    """``name`` if it is an executor, else a :class:`~removalx.errors.ConfigError`."""
    if name not in EXECUTORS:
        raise ConfigError(
            f"Unknown executor {name[:40]!r}; expected one of {', '.join(EXECUTORS)}.",
            "Pass --executor local (default) or --executor ray.",
        )
    return name
