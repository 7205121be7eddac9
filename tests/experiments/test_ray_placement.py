"""Issue 27 §3.6: Ray runs that cannot start fail at once with a message, never hang.

The address checks and the Ray-only flags need no Ray (nothing but 127.0.0.1 is contacted);
the resource checks run against one local 2-CPU Ray (``ray.init(num_cpus=2)``, no dashboard)
started once for the module.
"""

from __future__ import annotations

import socket

import pytest

from removalx.cli.experiments import main
from removalx.errors import ConfigError, RemovalxError
from removalx.experiments.api import Options, run_experiment
from removalx.experiments.executors import check_ray_options

ray = pytest.importorskip("ray")
from removalx.experiments.ray_executor import (  # noqa: E402  (needs the ray extra to be meaningful)
    CONNECT_TIMEOUT,
    RayExecutor,
    check_address,
    parse_address,
    placement_capacity,
)


# -- the address, without Ray ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("address", "parsed"),
    [
        ("auto", None),
        ("local", None),
        ("10.0.0.5:6379", ("10.0.0.5", 6379)),
        ("head-node.example:6379", ("head-node.example", 6379)),
        ("ray://10.0.0.5:10001", ("10.0.0.5", 10001)),
        ("[::1]:6379", ("::1", 6379)),
    ],
)
def test_ray_address_forms_are_accepted(address, parsed):
    assert parse_address(address) == parsed


@pytest.mark.parametrize(
    "address",
    [
        "not a url",
        "",
        "10.0.0.5",
        "ray://10.0.0.5",
        "10.0.0.5:0",
        "10.0.0.5:65536",
        "host:port",
        "http://10.0.0.5:8265",
        "anyscale://x:1",
        "ray://ray://h:1",
        "h o:1",
        "x" * 10_000 + ":1",
    ],
)
def test_malformed_ray_address_is_a_config_error(address):
    with pytest.raises(ConfigError) as err:
        parse_address(address)
    msg = str(err.value)
    assert "ray://HOST:PORT" in msg and "Fix:" in msg and len(msg) < 600  # bounded, says the forms


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_address_fails_in_seconds(monkeypatch):
    port = _free_port()  # closed again: nothing listens there
    timeouts: list[float | None] = []
    connect = socket.create_connection

    def recording(address, timeout=None, *args, **kwargs):  # type: ignore[no-untyped-def]
        timeouts.append(timeout)
        return connect(address, timeout, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", recording)
    with pytest.raises(ConfigError, match=f"nothing answers at 127.0.0.1:{port}"):
        check_address(f"127.0.0.1:{port}")
    assert timeouts == [CONNECT_TIMEOUT] and CONNECT_TIMEOUT <= 5  # the attempt is bounded
    with pytest.raises(ConfigError, match="nothing answers"):
        check_address(f"ray://127.0.0.1:{port}")


def test_listening_address_passes():
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        port = srv.getsockname()[1]
        check_address(f"127.0.0.1:{port}")
        check_address(f"ray://127.0.0.1:{port}")
    for address in (None, "auto", "local"):
        check_address(address)  # Ray finds or starts these itself


def test_silent_address_times_out(monkeypatch):
    asked = []

    def silent(where, timeout):
        asked.append((where, timeout))
        raise TimeoutError("timed out")

    monkeypatch.setattr(socket, "create_connection", silent)
    with pytest.raises(ConfigError, match=r"timed out after at most 3 s"):
        check_address("10.0.0.5:6379")  # never contacted: create_connection is replaced
    assert asked == [(("10.0.0.5", 6379), 3.0)]


def test_cli_malformed_address_exits_3_without_traceback(tmp_path, capsys):
    db = tmp_path / "x.db"
    argv = ["evaluate", "--recipe", "lime3d", "--db", str(db), "--executor", "ray", "--address", "not a url"]
    assert main(argv) == 3
    err = capsys.readouterr().err
    assert "'not a url' is not a Ray address" in err and "Traceback" not in err
    assert not db.exists()  # refused before any work


# -- Ray-only options without --executor ray ----------------------------------------------------------
@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--workers", "40"], "--workers 40"),
        (["--cpus-per-worker", "1000"], "--cpus-per-worker 1000"),
        (["--gpus-per-worker", "1"], "--gpus-per-worker 1"),
        (["--address", "auto"], "--address auto"),
    ],
)
def test_cli_ray_flags_without_ray_executor_exit_3(tmp_path, capsys, flags, named):
    db = tmp_path / "x.db"
    assert main(["evaluate", "--recipe", "lime3d", "--db", str(db), *flags]) == 3
    err = capsys.readouterr().err
    assert named in err and "--executor ray" in err and "Traceback" not in err
    assert not db.exists()


def test_python_ray_options_without_ray_executor_are_refused(tmp_path):
    opts = Options(db=tmp_path / "x.db", workers=2, gpus_per_worker=0.5, progress=False)
    with pytest.raises(ConfigError, match=r"--workers 2, --gpus-per-worker 0.5 are options") as err:
        run_experiment("evaluate", [("lime3d", "lime3d", {})], opts)
    assert "executor='ray'" in str(err.value)
    assert not (tmp_path / "x.db").exists()
    # the defaults are not "given"; with the Ray executor every option is its own
    check_ray_options("local", address=None, workers=None, cpus_per_worker=1.0, gpus_per_worker=0.0)
    check_ray_options("ray", address="auto", workers=40, cpus_per_worker=8.0, gpus_per_worker=1.0)


# -- the cluster's resources ------------------------------------------------------------------------
def node(cpu: float, gpu: float = 0.0, alive: bool = True) -> dict:
    res = {"CPU": cpu, "memory": 1e9} | ({"GPU": gpu} if gpu else {})
    return {"Alive": alive, "Resources": res}


def test_placement_capacity_counts_per_node():
    # hand counts: workers are placed whole on one node
    assert placement_capacity([node(2)], 1, 0) == 2
    assert placement_capacity([node(3), node(3)], 2, 0) == 2  # 6 CPUs in all, but 1 + 1 fit
    assert placement_capacity([node(8, 1), node(8)], 1, 0.5) == 2  # only the GPU node, 2 halves
    assert placement_capacity([node(16, 4), node(4, 4)], 4, 1) == 5  # 4 (GPUs) + 1 (CPUs)
    assert placement_capacity([node(2), node(64, alive=False)], 1, 0) == 2  # dead nodes hold none
    assert placement_capacity([node(0.3)], 0.1, 0) == 3  # 0.3 / 0.1 = 2.999... in floating point
    assert placement_capacity([node(2)], 1000, 0) == 0


@pytest.fixture(scope="module")
def local_ray():
    from removalx.experiments.ray_executor import start_local_ray

    start_local_ray(num_cpus=2)
    try:
        yield
    finally:
        ray.shutdown()


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        (
            {"workers": 40},
            "asked for 40 workers × 1 CPU = 40 CPUs; the cluster has 2 CPUs on 1 node, room for 2 such",
        ),
        ({"cpus_per_worker": 1000}, "asks for 1000 CPUs and 0 GPUs, but no node has that many CPUs"),
        ({"gpus_per_worker": 1}, "asks for 1 CPU and 1 GPU, but no GPU; the cluster has 2 CPUs and 0 GPUs"),
        ({"workers": 3, "cpus_per_worker": 0.75}, "asked for 3 workers × 0.75 CPUs = 2.25 CPUs"),
    ],
)
def test_shortage_is_named_before_any_worker_starts(local_ray, kw, expected, monkeypatch):
    started: list[object] = []
    monkeypatch.setattr(RayExecutor, "_new_actor", lambda self: started.append(self))
    with pytest.raises(ConfigError) as err:
        RayExecutor(None, **kw)  # type: ignore[arg-type]  # refused before the spec is used
    assert expected in str(err.value), str(err.value)
    assert "Fix: " in str(err.value)
    assert started == []  # refused before any worker was asked for: nothing waits for placement
    assert ray.is_initialized()  # the session this module started is left alone


@ray.remote(num_cpus=2)
class _Hog:
    def ping(self) -> int:
        return 1


def test_workers_that_cannot_be_placed_time_out(local_ray, monkeypatch):
    hog = _Hog.remote()  # holds both CPUs of the cluster: the check passes, placement cannot
    try:
        assert ray.get(hog.ping.remote(), timeout=120) == 1
        waits: list[float | None] = []
        wait = ray.wait

        def recording(refs, *args, **kwargs):  # type: ignore[no-untyped-def]
            waits.append(kwargs.get("timeout"))
            return wait(refs, *args, **kwargs)

        monkeypatch.setattr(ray, "wait", recording)
        with pytest.raises(RemovalxError, match=r"0 of 1 Ray workers \(2 CPUs and 0 GPUs each\)"):
            RayExecutor(None, workers=1, cpus_per_worker=2, placement_timeout=2)  # type: ignore[arg-type]
        assert waits == [2]  # one wait for placement, bounded by placement_timeout
    finally:
        ray.kill(hog)


def test_cli_shortage_exits_3(local_ray, tmp_path, capsys):
    db = tmp_path / "x.db"
    argv = ["evaluate", "--recipe", "lime3d", "--db", str(db), "--executor", "ray", "--workers", "40"]
    argv += ["--n-videos", "1", "--frames", "4", "--size", "16", "--metrics", "deletion"]
    assert main(argv) == 3
    err = capsys.readouterr().err
    assert "asked for 40 workers" in err and "lower --workers".lower() in err.lower()
    assert "Traceback" not in err
