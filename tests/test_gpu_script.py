"""Issue 27 §2.14: benchmarks/gpu.py -- its CPU smoke path and its argument handling.

The GPU numbers themselves cannot be measured here; these tests run the same code on the CPU
(``--device cpu --smoke``: tiny model and clip, two recipes) and check every usage error exits
with code 3 and a message saying what to do.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu.py"


@pytest.fixture(scope="module")
def gpu():
    spec = importlib.util.spec_from_file_location("bench_gpu_H", SCRIPT)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def test_smoke_run_on_the_cpu_prints_one_table(gpu, capsys):
    rows = gpu.main(["--device", "cpu", "--smoke", "--dtypes", "fp32,bf16", "--samples", "16"])
    out = capsys.readouterr().out
    assert [r["recipe"] for r in rows] == list(gpu.SMOKE_RECIPES)
    for row in rows:
        assert row["fp32"]["ratio"] > 0 and row["fp32"]["n_forward"] >= 16
        assert row["bf16"]["ratio"] > 0
        assert row["err"] == 0.0  # the device is the CPU: the check compares identical runs
    lines = [line for line in out.splitlines() if line.startswith("|")]
    assert lines[0].startswith("| recipe | ratio fp32 | ratio bf16 |")
    assert len(lines) == 2 + len(rows)
    assert all(line.rstrip().endswith("| yes |") for line in lines[2:])


def test_budget_skips_the_remaining_recipes(gpu, capsys):
    rows = gpu.main(["--device", "cpu", "--smoke", "--dtypes", "fp32", "--budget", "0", "--samples", "8"])
    # the first recipe starts at t = 0 (not over budget); the second is skipped
    assert "fp32" in rows[0] and rows[1] == {"recipe": "occlusion3d", "note": "skipped (budget)"}
    assert "skipped (budget)" in capsys.readouterr().out


def test_a_failing_dtype_is_reported_not_raised(gpu, monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("autocast not supported here\nsecond line")

    monkeypatch.setattr(gpu, "timed_row", boom)
    rows = gpu.main(["--device", "cpu", "--smoke", "--dtypes", "fp16", "--recipes", "lime3d"])
    assert rows[0]["fp16"] == "n/a: RuntimeError: autocast not supported here"


def test_relative_error_oracle(gpu, monkeypatch):
    # cpu_check divides the largest difference by the largest |cpu value|: make the "device"
    # run differ from the CPU run by a known amount
    calls = []

    def fake_explain(name, clf, clip, n, bs):
        calls.append(clf.device.type)
        values = torch.tensor([1.0, -4.0]) if len(calls) == 2 else torch.tensor([1.0, -3.0])
        return type("A", (), {"values": values})()

    monkeypatch.setattr(gpu, "explain", fake_explain)
    args = gpu.parse_args(["--device", "cpu", "--smoke"])
    err = gpu.cpu_check("lime3d", torch.nn.Linear(1, 1), {}, torch.device("cpu"), args, (2, 8, 8))
    assert err == pytest.approx(1.0 / 4.0)


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--device", "cpu"], "--smoke"),
        (["--device", "cpu", "--smoke", "--recipes", "lime3d,nope"], "nope"),
        (["--device", "cpu", "--smoke", "--dtypes", "fp32,int8"], "int8"),
        (["--device", "cpu", "--smoke", "--check-size", "8x56"], "TxHxW"),
        (["--device", "cpu", "--smoke", "--batch-size", "0"], "positive"),
        (["--device", "tpu"], "cuda"),
        (["--device", "x" * 500], "is not a device"),
    ],
)
def test_usage_errors_exit_3_with_a_fix(gpu, capsys, argv, needle):
    with pytest.raises(SystemExit) as info:
        gpu.main(argv)
    assert info.value.code == 3
    err = capsys.readouterr().err
    assert needle in err and "fix:" in err and len(err) < 600  # bounded echo of the input


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_cuda_without_a_gpu_is_a_usage_error(gpu, capsys):
    with pytest.raises(SystemExit) as info:
        gpu.main([])
    assert info.value.code == 3
    assert "--device cpu --smoke" in capsys.readouterr().err


def test_count_syncs_is_zero_off_cuda(gpu):
    with gpu.count_syncs(torch.device("cpu")) as box:
        torch.ones(3).sum().item()
    assert box == [0]
