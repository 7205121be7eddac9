"""The Ray executor on a local 2-CPU Ray: same numbers as the local executor, faults, resume.

Ray runs on this machine only (``ray.init(num_cpus=2)``, no dashboard, no usage report) and is
shut down at the end of the module.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from removalx.cli.experiments import main
from removalx.experiments.api import Options, run_experiment
from tests.experiments.conftest import GRID

ray = pytest.importorskip("ray")

METRICS = ["deletion.steps=4", "insertion.steps=4"]


@pytest.fixture(scope="module")
def ray_session():
    from removalx.experiments.ray_executor import start_local_ray

    start_local_ray(num_cpus=2)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


def options(db: Path, model_spec: str, n: int, **kw) -> Options:
    return Options(
        db=db,
        n_videos=n,
        frames=4,
        size=16,
        model=model_spec,
        metrics="deletion,insertion,spatial_pointing",
        metric_set=METRICS,
        overrides=GRID[1::2],
        progress=False,
        **kw,
    )


def rows(db: Path, sql: str) -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


EXPL = 'SELECT item, method, recipe_hash, seed, target, plan_digest, n_forward, "values" FROM explanations'
SCORES = (
    "SELECT e.item, e.method, s.metric, s.value, s.details FROM scores s "
    "JOIN explanations e ON e.id = s.explanation_id"
)


def test_ray_results_are_bit_identical_to_local(ray_session, model_spec, tmp_path):
    recipes = [("lime3d", "lime3d", {}), ("rise3d", "rise3d", {})]
    local = run_experiment(
        "compare", recipes, options(tmp_path / "l.db", model_spec, 2), random_baseline=True
    )
    local.store.close()
    remote = run_experiment(
        "compare",
        recipes,
        options(tmp_path / "r.db", model_spec, 2, executor="ray", workers=2),
        random_baseline=True,
    )
    remote.store.close()
    assert (remote.counts.explained, remote.counts.scored) == (6, 18)
    a, b = sorted(rows(tmp_path / "l.db", EXPL)), sorted(rows(tmp_path / "r.db", EXPL))
    assert len(a) == 6 and a == b  # same bytes of every attribution, same targets and plans
    assert sorted(rows(tmp_path / "l.db", SCORES)) == sorted(rows(tmp_path / "r.db", SCORES))
    videos = "SELECT dataset, item, label, video, evidence, evidence_frames FROM videos"
    assert sorted(rows(tmp_path / "l.db", videos)) == sorted(rows(tmp_path / "r.db", videos))


def test_worker_killed_mid_unit_is_retried(ray_session, model_spec, tmp_path):
    from removalx.core.recipe import parse_overrides
    from removalx.data.datasets import dataset_refs
    from removalx.experiments.ray_executor import RayExecutor
    from removalx.experiments.runner import WorkerSpec, make_methods, parse_metrics, run_units
    from removalx.experiments.store import Store

    n = 4
    methods = make_methods([("lime3d", "lime3d", parse_overrides(GRID[1::2]))], None)
    metrics = parse_metrics("deletion,insertion", METRICS)
    _, refs = dataset_refs("zoo:synthetic", n, frames=4, size=16)
    spec = WorkerSpec.of(methods, metrics, model_spec, item_delay=0.4)
    ex = RayExecutor(spec, workers=2, cpus_per_worker=0.5)  # 4 half-CPU workers would fit; 2 asked
    assert ex.worker_threads == [1, 1] and len(set(ex.worker_pids)) == 2
    killed = []

    class KillOneWorker:
        """Forwards the executor; SIGKILLs a worker when the first result arrives (both are busy)."""

        def run(self, units):
            for i, pair in enumerate(ex.run(units)):
                if i == 0:
                    os.kill(ex.worker_pids[0], signal.SIGKILL)
                    killed.append(ex.worker_pids[0])
                yield pair

    store = Store(tmp_path / "k.db")
    try:
        counts = run_units(
            store, refs, methods, metrics, model_spec, KillOneWorker(), run_id=1, progress=False
        )
    finally:
        store.close()
        ex.close()
    assert killed and ex.retried >= 1  # a unit was lost with the worker and computed again
    assert (counts.explained, counts.scored) == (n, 2 * n)
    expl = rows(tmp_path / "k.db", "SELECT item FROM explanations")
    assert sorted(i for (i,) in expl) == sorted(r.item for r in refs)  # each once: none lost, none twice
    assert len(rows(tmp_path / "k.db", "SELECT * FROM scores")) == 2 * n
    with pytest.raises(ProcessLookupError):
        os.kill(killed[0], 0)


def _stored(db: Path) -> int:
    """Explanations in ``db`` so far (0 before the table exists)."""
    if not db.exists() or not rows(db, "SELECT 1 FROM sqlite_master WHERE name = 'explanations'"):
        return 0
    return int(rows(db, "SELECT COUNT(*) FROM explanations")[0][0])


def test_killed_driver_resumes(ray_session, model_spec, tmp_path):
    db = tmp_path / "d.db"
    n = 4
    argv = [
        "evaluate",
        "--recipe",
        "lime3d",
        "--model",
        model_spec,
        "--db",
        str(db),
        "--n-videos",
        str(n),
        "--frames",
        "4",
        "--size",
        "16",
        "--quiet",
        "--metrics",
        "deletion,insertion",
        *[x for m in METRICS for x in ("--metric-set", m)],
        *GRID,
    ]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "removalx.cli.experiments",
            *argv,
            "--executor",
            "ray",
            "--address",
            ray_session,
            "--workers",
            "2",
            "--item-delay",
            "0.4",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            if _stored(db) >= 1:
                break
            time.sleep(0.1)
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        if proc.stderr:
            proc.stderr.close()
    done = rows(db, "SELECT COUNT(*) FROM explanations")[0][0]
    assert 1 <= done < n
    assert main([*argv, "--executor", "ray", "--workers", "1"]) == 0  # the rerun finishes the rest
    expl = rows(db, "SELECT item FROM explanations")
    assert len(expl) == n == len(set(expl))
    assert len(rows(db, "SELECT DISTINCT explanation_id, metric FROM scores")) == 2 * n
    assert len(rows(db, "SELECT * FROM scores")) == 2 * n
    runs = rows(db, "SELECT computed, skipped, finished FROM runs ORDER BY id")
    assert runs[0][2] is None and runs[1][:2] == (n - done, done)


def test_worker_threads_follow_cpus(ray_session, model_spec):
    from removalx.experiments.ray_executor import RayExecutor
    from removalx.experiments.runner import WorkerSpec, make_methods, parse_metrics

    spec = WorkerSpec.of(
        make_methods([("lime3d", "lime3d", {})], None), parse_metrics("deletion"), model_spec
    )
    with RayExecutor(spec, workers=1, cpus_per_worker=2) as ex:
        assert ex.worker_threads == [2]


def test_ray_executor_without_ray_names_the_extra(monkeypatch, model_spec, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    db = tmp_path / "x.db"
    argv = ["evaluate", "--recipe", "lime3d", "--model", model_spec, "--db", str(db), "--executor", "ray"]
    assert main(argv) == 3
    err = capsys.readouterr().err
    assert "pip install 'removalx[ray]'" in err and "Traceback" not in err
    assert not db.exists()
