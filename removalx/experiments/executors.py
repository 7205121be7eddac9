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

__all__ = ["EXECUTORS", "RAY_OPTIONS", "LocalExecutor", "check_ray_options"]

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


#: The options only the Ray executor reads, with their defaults (CLI flag, ``Options`` field).
RAY_OPTIONS: dict[str, tuple[str, Any]] = {
    "address": ("--address", None),
    "workers": ("--workers", None),
    "cpus_per_worker": ("--cpus-per-worker", 1.0),
    "gpus_per_worker": ("--gpus-per-worker", 0.0),
}


def check_ray_options(executor: str, **options: Any) -> None:
    """Refuse Ray-only options (:data:`RAY_OPTIONS`) set to other than their defaults without Ray.

    They would be ignored silently by the local executor. An option given at its default value
    (``--cpus-per-worker 1``) cannot be told apart from one not given, and changes nothing.
    """
    if executor == "ray":
        return
    given = [
        f"{RAY_OPTIONS[k][0]} {str(v)[:40]}"
        for k, v in options.items()
        if k in RAY_OPTIONS and v is not None and v != RAY_OPTIONS[k][1]
    ]
    if given:
        raise ConfigError(
            f"{', '.join(given)} {'is an option' if len(given) == 1 else 'are options'} of the Ray executor, "
            f"but the executor is {executor[:40]!r}; {'it' if len(given) == 1 else 'they'} would be ignored.",
            "Add --executor ray (Python: executor='ray'), or leave "
            f"{'it' if len(given) == 1 else 'them'} out.",
        )
