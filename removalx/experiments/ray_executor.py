"""The Ray executor of ``evaluate / compare / ablate`` (``--executor ray``; docs/scaling.md).

Workers are Ray actors, each declared with ``num_cpus`` / ``num_gpus`` (fractions allowed) so Ray
places them on the cluster; each loads the model once from its spec (never a pickled module),
rebuilds the methods from their validated recipes, sets torch's threads to its CPUs, and
computes the units it is sent (:func:`~removalx.experiments.units.compute_unit`). The driver keeps
every worker fed with up to ``depth`` units, yields each result as it arrives (it is the store's
only writer), and retries a unit whose worker died (a SIGKILL, a lost node) on another worker,
replacing the dead one. Ray is the ``ray`` extra (``pip install removalx[ray]``).
"""

from __future__ import annotations

import contextlib
import os
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any

from removalx.errors import ConfigError, RemovalxError
from removalx.experiments.frames import MissingExtraError
from removalx.experiments.runner import WorkerSpec, build_context
from removalx.experiments.units import Unit, UnitResult, compute_unit

__all__ = ["RayExecutor", "UnitWorker", "require_ray", "start_local_ray"]


def require_ray() -> Any:
    """The ``ray`` module, or :class:`MissingExtraError` naming the extra."""
    try:
        import ray
    except ImportError:
        raise MissingExtraError(
            "--executor ray needs Ray, which is not installed.",
            "pip install 'removalx[ray]' (or run with --executor local).",
        ) from None
    return ray


def start_local_ray(num_cpus: int | None = None) -> Any:
    """Start Ray on this machine only: loopback address, no dashboard, no usage report."""
    ray = require_ray()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    return ray.init(
        num_cpus=num_cpus,
        include_dashboard=False,
        configure_logging=False,
        log_to_driver=False,
        _node_ip_address="127.0.0.1",
    )


class UnitWorker:
    """The body of a worker actor: one loaded model, many units."""

    def __init__(self, spec: WorkerSpec, threads: int) -> None:
        import torch

        torch.set_num_threads(max(1, int(threads)))
        self.error: RemovalxError | None = None
        try:
            self.context = build_context(spec)
        except RemovalxError as exc:  # reported by ready(), as the user's error, not a dead actor
            self.error = exc

    def ready(self) -> tuple[int, int]:
        """``(process id, torch threads)`` once the model is loaded (raises what loading it raised)."""
        import torch

        if self.error is not None:
            raise self.error
        return os.getpid(), torch.get_num_threads()

    def compute(self, unit: Unit) -> UnitResult:
        return compute_unit(self.context, unit)


class RayExecutor:
    """Compute units on Ray actors; see the module docstring.

    Parameters
    ----------
    spec : WorkerSpec
        Model, methods and metrics, rebuilt in each worker.
    address : str, optional
        Passed to ``ray.init`` (``"auto"``, ``"ray://host:port"``). Without it, an initialised
        Ray session is used, or Ray is started on this machine (:func:`start_local_ray`).
    workers : int, optional
        Number of actors (default: as many as the cluster's CPUs / GPUs hold).
    cpus_per_worker, gpus_per_worker : float
        Resources each actor declares; torch uses ``max(1, int(cpus_per_worker))`` threads.
    depth : int
        Units queued per worker (2: the next unit is there when one finishes).
    max_attempts : int
        Workers a unit may be tried on before the run stops.
    """

    def __init__(
        self,
        spec: WorkerSpec,
        *,
        address: str | None = None,
        workers: int | None = None,
        cpus_per_worker: float = 1.0,
        gpus_per_worker: float = 0.0,
        depth: int = 2,
        max_attempts: int = 3,
    ) -> None:
        ray = require_ray()
        if cpus_per_worker <= 0 or gpus_per_worker < 0:
            raise ConfigError(
                f"--cpus-per-worker must be > 0 and --gpus-per-worker >= 0, got {cpus_per_worker} and "
                f"{gpus_per_worker}.",
                "E.g. --cpus-per-worker 4 --gpus-per-worker 0.5.",
            )
        self.ray = ray
        self._started = False
        self.retried = 0  # units computed again because their worker died
        if not ray.is_initialized():
            if address is None:
                start_local_ray()
            else:
                ray.init(address=address, configure_logging=False)
            self._started = True
        try:
            if workers is None:
                res = ray.cluster_resources()
                fits = [int(res.get("CPU", 0) // cpus_per_worker)]
                if gpus_per_worker > 0:
                    fits.append(int(res.get("GPU", 0) // gpus_per_worker))
                workers = max(1, min(fits))
            if int(workers) < 1:
                raise ConfigError(f"--workers must be >= 1, got {workers}.", "Pass --workers 1 or more.")
            self.spec = spec
            self.threads = max(1, int(cpus_per_worker))
            self.depth = max(1, int(depth))
            self.max_attempts = max(1, int(max_attempts))
            self._actor_cls = ray.remote(num_cpus=cpus_per_worker, num_gpus=gpus_per_worker, max_restarts=0)(
                UnitWorker
            )
            self.actors = [self._new_actor() for _ in range(int(workers))]
            try:
                ready = ray.get([a.ready.remote() for a in self.actors])
                self.worker_pids: list[int] = [pid for pid, _ in ready]
                self.worker_threads: list[int] = [n for _, n in ready]
            except ray.exceptions.RayTaskError as exc:
                raise self._failure(exc) from None
        except BaseException:
            self.close()
            raise

    def _new_actor(self) -> Any:
        return self._actor_cls.remote(self.spec, self.threads)

    def _failure(self, exc: BaseException) -> BaseException:
        """The removalx error inside a Ray task error (raised without Ray's traceback), else ``exc``."""
        cause = getattr(exc, "cause", None)
        return cause if isinstance(cause, RemovalxError) else exc

    def run(self, units: Iterable[Unit]) -> Iterator[tuple[Unit, UnitResult]]:
        """Yield ``(unit, result)`` as results arrive; retry a unit whose worker died."""
        ray = self.ray
        from ray.exceptions import RayActorError, RayTaskError, WorkerCrashedError

        source = iter(units)
        retry: deque[Unit] = deque()
        attempts: dict[int, int] = {}
        inflight: dict[Any, tuple[int, Any, Unit]] = {}
        load = [0] * len(self.actors)
        exhausted = False

        def next_unit() -> Unit | None:
            nonlocal exhausted
            if retry:
                return retry.popleft()
            if exhausted:
                return None
            u = next(source, None)
            exhausted = u is None
            return u

        while True:
            for slot in range(len(self.actors)):
                while load[slot] < self.depth:
                    unit = next_unit()
                    if unit is None:
                        break
                    actor = self.actors[slot]
                    inflight[actor.compute.remote(unit)] = (slot, actor, unit)
                    load[slot] += 1
            if not inflight:
                return
            (done,), _ = ray.wait(list(inflight), num_returns=1)
            slot, actor, unit = inflight.pop(done)
            load[slot] -= 1
            try:
                result = ray.get(done)
            except (RayActorError, WorkerCrashedError) as exc:
                n = attempts[id(unit)] = attempts.get(id(unit), 0) + 1
                if n >= self.max_attempts:
                    raise RemovalxError(
                        f"Unit {unit.key[:120]!r} was tried on {n} workers and each one died ({str(exc)[:200]}).",
                        "Check the workers' memory and logs (a clip too large for a worker's memory?).",
                    ) from None
                self.retried += 1
                retry.appendleft(unit)  # first in line for the next free worker
                if self.actors[slot] is actor:  # replace the dead worker (once)
                    self.actors[slot] = self._new_actor()
                continue
            except RayTaskError as exc:
                raise self._failure(exc) from None
            yield unit, result

    def close(self) -> None:
        """Stop the actors, and Ray itself if this executor started it."""
        for a in getattr(self, "actors", []):
            with contextlib.suppress(Exception):  # an actor that is gone already
                self.ray.kill(a)
        self.actors = []
        if self._started and self.ray.is_initialized():
            self.ray.shutdown()
        self._started = False

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
