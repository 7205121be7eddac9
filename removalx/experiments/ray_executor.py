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
import math
import os
import re
import socket
import time
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any

from removalx.errors import ConfigError, RemovalxError, truncate
from removalx.experiments.frames import MissingExtraError
from removalx.experiments.runner import WorkerSpec, build_context
from removalx.experiments.units import Unit, UnitResult, compute_unit

__all__ = [
    "RayExecutor",
    "UnitWorker",
    "check_address",
    "placement_capacity",
    "require_ray",
    "start_local_ray",
]

#: Seconds to wait for a TCP connection to ``--address`` before ``ray.init`` (which waits minutes).
CONNECT_TIMEOUT = 3.0
#: Seconds to wait for every worker to be placed on the cluster and started (not loaded).
PLACEMENT_TIMEOUT = 120.0
_HOST = re.compile(r"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)$")


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


def parse_address(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of a Ray address, ``None`` for ``auto`` / ``local``; a :class:`ConfigError` else.

    Accepted, as ``ray.init`` accepts them: ``auto`` (the running cluster), ``local`` (a new Ray
    on this machine), ``HOST:PORT`` (the head's GCS, e.g. ``10.0.0.5:6379``) and
    ``ray://HOST:PORT`` (Ray Client, usually port 10001); ``HOST`` is a name, an IPv4 address or
    ``[IPv6]`` (at most 255 characters). Ray's other ``SCHEME://`` modules and a port left out are refused (our choice:
    the error names the forms above).
    """
    text = address.strip()
    if text in ("auto", "local"):
        return None
    rest = text[len("ray://") :] if text.startswith("ray://") else text
    host, colon, port = rest.rpartition(":")
    if (
        "://" in rest
        or not colon
        or len(host) > 255
        or not _HOST.match(host)
        or not port.isdigit()
        or not 0 < int(port) < 65536
    ):
        raise ConfigError(
            f"--address {truncate(address, 80)!r} is not a Ray address; expected 'auto', 'local', "
            "HOST:PORT (the head node's GCS, e.g. 10.0.0.5:6379) or ray://HOST:PORT (Ray Client, "
            "e.g. ray://10.0.0.5:10001).",
            "Pass one of these forms, or leave --address out to start Ray on this machine.",
        )
    return host.strip("[]"), int(port)


def check_address(address: str | None, timeout: float = CONNECT_TIMEOUT) -> None:
    """Refuse a malformed ``address`` and one nobody listens on (a TCP connection, ``timeout`` s).

    ``ray.init`` would wait minutes on an unreachable head; this fails in seconds instead.
    ``None``, ``auto`` and ``local`` are not checked here (Ray finds or starts the cluster).
    """
    if address is None:
        return
    where = parse_address(address)
    if where is None:
        return
    host, port = where
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:  # refused, timed out, unknown host, unreachable network
        why = (
            "timed out" if isinstance(exc, socket.timeout) else truncate(str(exc) or type(exc).__name__, 120)
        )
        raise ConfigError(
            f"--address {truncate(address, 80)!r}: nothing answers at {truncate(host, 60)}:{port} "
            f"(TCP connection {why} after at most {timeout:g} s).",
            "Check that the Ray head node is running (`ray status` on it) and the address: HOST:PORT "
            "is the GCS port (default 6379), ray://HOST:PORT the Ray Client port (default 10001).",
        ) from None


def placement_capacity(nodes: Iterable[dict[str, Any]], cpus: float, gpus: float) -> int:
    """How many workers of ``cpus`` CPUs and ``gpus`` GPUs the alive ``nodes`` (``ray.nodes()``) hold.

    Each worker is placed on one node, so a node holds ``floor(CPU / cpus)`` of them (and no more
    than ``floor(GPU / gpus)`` when ``gpus > 0``); Ray's resources are fixed-point with four
    decimals, so the division is rounded to them first.
    """
    total = 0
    for node in nodes:
        if not node.get("Alive", True):
            continue
        res = node.get("Resources", {})
        fit = math.floor(round(float(res.get("CPU", 0.0)) / cpus, 4))
        if gpus > 0:
            fit = min(fit, math.floor(round(float(res.get("GPU", 0.0)) / gpus, 4)))
        total += max(0, fit)
    return total


def _plural(n: float, word: str) -> str:
    return f"{n:g} {word}" if n == 1 else f"{n:g} {word}s"


def _check_placement(nodes: list[dict[str, Any]], workers: int | None, cpus: float, gpus: float) -> int:
    """The number of workers (``workers``, or as many as fit), or a :class:`ConfigError` naming the shortage."""
    alive = [n.get("Resources", {}) for n in nodes if n.get("Alive", True)]
    cpu = sum(float(r.get("CPU", 0.0)) for r in alive)
    gpu = sum(float(r.get("GPU", 0.0)) for r in alive)
    fits = placement_capacity(nodes, cpus, gpus)
    has = f"the cluster has {_plural(cpu, 'CPU')}" + (f" and {_plural(gpu, 'GPU')}" if gpus > 0 else "")
    has += f" on {_plural(len(alive), 'node')}"
    if fits == 0:
        big_cpu = max((float(r.get("CPU", 0.0)) for r in alive), default=0.0)
        if gpus > 0 and gpu == 0:
            what, fix = "no GPU", "Leave out --gpus-per-worker (default 0), or run on a cluster with GPUs."
        elif big_cpu < cpus:
            what = f"no node has that many CPUs (the largest has {big_cpu:g})"
            fix = f"Lower --cpus-per-worker to {big_cpu:g} or less."
        else:
            what = "no node has that many CPUs and GPUs together"
            fix = "Lower --cpus-per-worker or --gpus-per-worker."
        raise ConfigError(
            f"Each Ray worker asks for {_plural(cpus, 'CPU')} and {_plural(gpus, 'GPU')}, but {what}; {has}.",
            fix,
        )
    if workers is None:
        return fits
    if workers > fits:
        asked = f"asked for {workers} workers × {_plural(cpus, 'CPU')} = {_plural(workers * cpus, 'CPU')}"
        if gpus > 0:
            asked += f" and × {_plural(gpus, 'GPU')} = {_plural(workers * gpus, 'GPU')}"
        raise ConfigError(
            f"Ray cannot place the workers: {asked}; {has}, room for {fits} such workers.",
            f"Lower --workers to {fits} or less (or --cpus-per-worker / --gpus-per-worker), or leave "
            "--workers out: as many workers as fit.",
        )
    return workers


class UnitWorker:
    """The body of a worker actor: one loaded model, many units.

    Creating it is cheap (:meth:`placed` answers as soon as Ray has placed and started it); the
    model is loaded by :meth:`ready` (or the first :meth:`compute`).
    """

    def __init__(self, spec: WorkerSpec, threads: int) -> None:
        self.spec = spec
        self.threads = max(1, int(threads))
        self.context: Any = None
        self.error: RemovalxError | None = None

    def placed(self) -> int:
        """The process id: the actor is placed and running (the model may not be loaded yet)."""
        return os.getpid()

    def _load(self) -> None:
        if self.context is not None or self.error is not None:
            return
        import torch

        torch.set_num_threads(self.threads)
        try:
            self.context = build_context(self.spec)
        except RemovalxError as exc:  # reported as the user's error, not a dead actor
            self.error = exc

    def ready(self) -> tuple[int, int]:
        """``(process id, torch threads)`` once the model is loaded (raises what loading it raised)."""
        import torch

        self._load()
        if self.error is not None:
            raise self.error
        return os.getpid(), torch.get_num_threads()

    def compute(self, unit: Unit) -> UnitResult:
        self._load()
        if self.error is not None:
            raise self.error
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
    placement_timeout : float
        Seconds to wait for the workers to be placed and started (loading the model is not
        counted); then a :class:`~removalx.errors.RemovalxError` instead of a run that hangs.

    Before any worker is created, ``address`` is checked (:func:`check_address`: its form, and
    a TCP connection within :data:`CONNECT_TIMEOUT` s) and the request is compared with the
    cluster's resources (:func:`placement_capacity`): asking for more than the nodes hold is a
    :class:`~removalx.errors.ConfigError` naming the shortage, not a wait for ever.
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
        placement_timeout: float = PLACEMENT_TIMEOUT,
    ) -> None:
        ray = require_ray()
        if not cpus_per_worker > 0 or not gpus_per_worker >= 0:
            raise ConfigError(
                f"--cpus-per-worker must be > 0 and --gpus-per-worker >= 0, got {cpus_per_worker} and "
                f"{gpus_per_worker}.",
                "E.g. --cpus-per-worker 4 --gpus-per-worker 0.5.",
            )
        if workers is not None and int(workers) < 1:
            raise ConfigError(f"--workers must be >= 1, got {workers}.", "Pass --workers 1 or more.")
        self.ray = ray
        self._started = False
        self.retried = 0  # units computed again because their worker died
        self.actors: list[Any] = []
        if not ray.is_initialized():
            self._connect(address)
        elif address is not None:
            parse_address(address)  # ignored (Ray is running), but a malformed one is still refused
        try:
            n = _check_placement(
                ray.nodes(), None if workers is None else int(workers), cpus_per_worker, gpus_per_worker
            )
            self.spec = spec
            self.threads = max(1, int(cpus_per_worker))
            self.depth = max(1, int(depth))
            self.max_attempts = max(1, int(max_attempts))
            self._actor_cls = ray.remote(num_cpus=cpus_per_worker, num_gpus=gpus_per_worker, max_restarts=0)(
                UnitWorker
            )
            self.actors = [self._new_actor() for _ in range(n)]
            self._wait_placed(placement_timeout, cpus_per_worker, gpus_per_worker)
            try:
                ready = ray.get([a.ready.remote() for a in self.actors])
                self.worker_pids: list[int] = [pid for pid, _ in ready]
                self.worker_threads: list[int] = [n for _, n in ready]
            except ray.exceptions.RayTaskError as exc:
                raise self._failure(exc) from None
        except BaseException:
            self.close()
            raise

    def _connect(self, address: str | None) -> None:
        """Start Ray here (no ``address``) or connect to ``address`` after :func:`check_address`."""
        if address is None:
            start_local_ray()
        else:
            check_address(address)
            try:
                self.ray.init(address=address, configure_logging=False)
            except ConnectionError as exc:  # e.g. 'auto' and no running cluster
                raise ConfigError(
                    f"--address {truncate(address, 80)!r}: Ray could not connect ({truncate(str(exc), 200)}).",
                    "Start the cluster first (`ray start --head`), or leave --address out to start Ray here.",
                ) from None
        self._started = True

    def _wait_placed(self, timeout: float, cpus: float, gpus: float) -> None:
        """Wait at most ``timeout`` s for every worker to be placed and started, else raise."""
        placed = [a.placed.remote() for a in self.actors]
        start = time.monotonic()
        done, waiting = self.ray.wait(placed, num_returns=len(placed), timeout=timeout)
        if waiting:
            raise RemovalxError(
                f"{len(done)} of {len(placed)} Ray workers ({_plural(cpus, 'CPU')} and "
                f"{_plural(gpus, 'GPU')} each) were placed and started within "
                f"{time.monotonic() - start:.0f} s; the cluster has the resources, so other jobs "
                "hold them or its nodes cannot start workers.",
                "Check `ray status` (free resources) and the worker logs (/tmp/ray/session_latest/logs); "
                "lower --workers, --cpus-per-worker or --gpus-per-worker.",
            )

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
