#!/usr/bin/env python
"""Throughput of ``evaluate`` with the local and the Ray executor (docs/scaling.md, docs/benchmarks.md).

Three measurements, printed as a table (ratios within one run; the machine may be shared):

1. **Units per second** of ``evaluate`` on ``zoo:synthetic`` (``--clips`` clips, default 16) with
   ``zoo:r3d_tiny``: the local executor with one torch thread, then Ray with 1 and 2 workers of
   one CPU (one thread) each on a local ``ray.init(num_cpus=2)``. Scaling efficiency =
   (units/s with 2 workers) / (2 x units/s of the local executor). Goal: >= 0.85 (1.7x).
   Worker start-up (model load) is excluded: the clock starts when the workers are ready.
2. **Per-unit Ray overhead**: the round trip of one unit through an actor that does no work
   (scheduling, sending the unit, returning a result of the same size), as a share of the
   mean unit time of the local executor. Goal: <= 2 %.
3. **r3d_18 forward cost** on this CPU (torchvision ``r3d_18``, random weights, 16x112x112,
   batch 8, all threads): seconds per clip, the input of the Kinetics-400 estimate of
   docs/scaling.md (``--r3d18``).

Run: ``python benchmarks/ray_scaling.py [--clips 16] [--r3d18]``; ``--quick`` is a smoke run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch


def _setup(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from removalx.data.datasets import dataset_refs
    from removalx.experiments.runner import make_methods, parse_metrics

    overrides = {"sample_selection.n_samples": args.samples}
    methods = make_methods([(args.recipe, args.recipe, overrides)], None)
    metrics = parse_metrics(
        "deletion,insertion", [f"deletion.steps={args.steps}", f"insertion.steps={args.steps}"]
    )
    _, refs = dataset_refs("zoo:synthetic", args.clips, frames=args.frames, size=args.size)
    return methods, metrics, refs


def _timed_run(executor, methods, metrics, refs, db: Path) -> float:  # type: ignore[no-untyped-def]
    from removalx.experiments.runner import run_units
    from removalx.experiments.store import Store

    store = Store(db)
    try:
        t0 = time.perf_counter()
        counts = run_units(store, refs, methods, metrics, "zoo:r3d_tiny", executor, run_id=1, progress=False)
        dt = time.perf_counter() - t0
    finally:
        store.close()
    assert counts.explained == len(refs), counts
    return dt


class _Echo:
    """An actor that returns a result of a unit's size without computing anything."""

    def __init__(self, result) -> None:  # type: ignore[no-untyped-def]
        self.result = result

    def compute(self, unit):  # type: ignore[no-untyped-def]
        return self.result


def _r3d18() -> None:
    """Seconds per clip of torchvision r3d_18 (random weights) at 16x112x112, batch 8, all threads."""
    from removalx.models import load_model

    torch.set_num_threads(os.cpu_count() or 1)
    m = load_model("torchvision:r3d_18", weights="none")
    x = torch.rand(8, 16, 112, 112, 3)
    with torch.inference_mode():
        m(x)
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            m(x)
            times.append((time.perf_counter() - t0) / 8)
    print(
        f"r3d_18 forward, 16x112x112, batch 8, {torch.get_num_threads()} threads: "
        f"{min(times) * 1000:.0f} ms per clip (min of 3; median {statistics.median(times) * 1000:.0f} ms)"
    )
    print(f"load average: {os.getloadavg()}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clips", type=int, default=16)
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--size", type=int, default=112)
    p.add_argument("--recipe", default="rise3d")
    p.add_argument("--samples", type=int, default=100, help="samples per explanation")
    p.add_argument("--steps", type=int, default=16, help="insertion / deletion steps")
    p.add_argument("--r3d18", action="store_true", help="also time r3d_18 forward passes")
    p.add_argument("--r3d18-only", action="store_true", help="only time r3d_18 forward passes")
    p.add_argument("--quick", action="store_true", help="smoke run: 4 tiny clips")
    args = p.parse_args()
    if args.r3d18_only:
        _r3d18()
        return 0
    if args.quick:
        args.clips, args.frames, args.size, args.samples, args.steps = 4, 8, 32, 16, 4
    import ray

    from removalx.experiments.executors import LocalExecutor
    from removalx.experiments.ray_executor import RayExecutor, start_local_ray
    from removalx.experiments.runner import WorkerSpec, make_context
    from removalx.experiments.units import RunCounts, compute_unit, plan_units
    from removalx.models import load_model

    methods, metrics, refs = _setup(args)
    n = len(refs)
    tmp = Path(tempfile.mkdtemp(prefix="removalx-ray-bench-"))
    torch.set_num_threads(1)
    ctx = make_context(load_model("zoo:r3d_tiny"), methods, metrics)
    t_local = _timed_run(LocalExecutor(ctx), methods, metrics, refs, tmp / "local.db")
    rows = [("local (1 thread)", 1, n / t_local)]
    start_local_ray(num_cpus=2)
    try:
        spec = WorkerSpec.of(methods, metrics, "zoo:r3d_tiny")
        for w in (1, 2):
            ex = RayExecutor(spec, workers=w, cpus_per_worker=1)
            try:
                t = _timed_run(ex, methods, metrics, refs, tmp / f"ray{w}.db")
            finally:
                ex.close()
            rows.append((f"ray, {w} worker{'s' if w > 1 else ''}", w, n / t))
        # per-unit overhead: round trips of real units and results through a no-op actor
        from removalx.experiments.store import Store

        store = Store(tmp / "echo.db")
        units = list(plan_units(store, refs, methods, metrics, "zoo:r3d_tiny", RunCounts()))
        store.close()
        result = compute_unit(ctx, units[0])
        echo = ray.remote(num_cpus=1)(_Echo).remote(result)
        ray.get(echo.compute.remote(units[0]))
        trips = []
        for u in units:
            t0 = time.perf_counter()
            ray.get(echo.compute.remote(u))
            trips.append(time.perf_counter() - t0)
        ray.kill(echo)
    finally:
        ray.shutdown()
    unit_s = t_local / n
    print(
        f"evaluate {args.recipe} ({args.samples} samples, deletion+insertion {args.steps} steps) on "
        f"{n} zoo:synthetic clips {args.frames}x{args.size}x{args.size}, zoo:r3d_tiny, {os.cpu_count()} CPUs"
    )
    print(f"{'executor':<20}{'units/s':>10}{'speed-up':>10}{'efficiency':>12}")
    for name, w, rate in rows:
        speed = rate / rows[0][2]
        print(f"{name:<20}{rate:>10.3f}{speed:>10.2f}{speed / w:>12.2f}")
    trip = statistics.median(trips)
    print(
        f"mean unit time (local): {unit_s * 1000:.1f} ms; Ray round trip per unit (no-op actor, median of "
        f"{len(trips)}): {trip * 1000:.2f} ms = {100 * trip / unit_s:.2f} % of a unit"
    )
    if args.r3d18:
        _r3d18()
    return 0


if __name__ == "__main__":
    sys.exit(main())
