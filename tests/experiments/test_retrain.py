"""KAR / ROAR: ranking and modifying clips by hand, and the retraining loop end to end."""

from __future__ import annotations

import re
import sqlite3

import pytest
import torch

from removalx.cli import main
from removalx.data.datasets import dataset_items
from removalx.errors import ConfigError
from removalx.experiments.retrain import curve_rows, format_curves
from removalx.experiments.store import Store
from removalx.metrics.retrain import keep_mask, modify_clips, retrain_accuracy
from removalx.zoo.train import native_clips


def test_keep_mask_hand_case() -> None:
    maps = torch.tensor([[[[0.1, 0.9], [0.5, 0.5]]], [[[3.0, float("nan")], [-1.0, 2.0]]]])  # [2, 1, 2, 2]
    kar = keep_mask(maps, 0.5, "kar")
    # clip 0: 0.9 first, then the two 0.5 tie: the earlier position (row 1, col 0) wins
    assert kar[0, 0].tolist() == [[False, True], [True, False]]
    # clip 1: 3.0 and 2.0; NaN ranks last
    assert kar[1, 0].tolist() == [[True, False], [False, True]]
    assert torch.equal(keep_mask(maps, 0.5, "roar"), ~kar)
    assert keep_mask(maps, 0.0, "kar").sum() == 0 and keep_mask(maps, 1.0, "kar").all()
    assert keep_mask(maps, 0.25, "kar").sum(dim=(1, 2, 3)).tolist() == [1, 1]  # round(0.25 * 4)


def test_modify_clips_fills_per_channel() -> None:
    video = torch.arange(2 * 1 * 1 * 2 * 3, dtype=torch.float32).view(2, 1, 1, 2, 3)
    keep = torch.tensor([[[[True, False]]], [[[False, False]]]])
    out = modify_clips(video, keep, torch.tensor([-1.0, -2.0, -3.0]))
    assert out[0, 0, 0, 0].tolist() == video[0, 0, 0, 0].tolist()
    assert out[0, 0, 0, 1].tolist() == [-1.0, -2.0, -3.0]
    assert (out[1] == torch.tensor([-1.0, -2.0, -3.0])).all()


def _rows(db: str) -> list[dict]:
    store = Store(db, read_only=True)
    try:
        return curve_rows(store)
    finally:
        store.close()


def _sets(k: str, value: str) -> list[str]:
    return ["--metric-set", f"kar.{k}={value}", "--metric-set", f"roar.{k}={value}"]


ARGS = [
    "--model",
    "zoo:r3d_tiny",
    "--n-videos",
    "8",
    "--frames",
    "4",
    "--size",
    "16",
    "--metrics",
    "kar,roar",
    *_sets("n_train", "8"),
    *_sets("fractions", "[0,1]"),
    *_sets("epochs", "1"),
    *_sets("train_seed", "1000"),
]


@pytest.fixture(scope="module")
def kar_db(tmp_path_factory) -> str:
    db = str(tmp_path_factory.mktemp("kar") / "kar.db")
    assert main(["compare", "--recipes", "gradient", "--db", db, "--no-random", *ARGS]) == 0
    return db


def test_curves_have_every_point_and_the_random_line(kar_db: str) -> None:
    rows = _rows(kar_db)
    assert {(r["method"], r["metric"], r["fraction"]) for r in rows} == {
        (m, k, f) for m in ("gradient", "random") for k in ("kar", "roar") for f in (0.0, 1.0)
    }
    assert all(r["n_train"] == 8 and r["n_test"] == 8 for r in rows)
    text = "\n".join(format_curves(rows))
    assert "kar (test accuracy after retraining; higher is better" in text


def test_all_pixels_replaced_gives_chance_accuracy(kar_db: str) -> None:
    """KAR at k = 0 and ROAR at k = 1 replace every pixel: the retrained model sees one
    constant clip, predicts one class for every test clip, and 2 of the 8 balanced clips
    (labels i % 4) carry it."""
    rows = _rows(kar_db)
    blank = [r for r in rows if (r["metric"], r["fraction"]) in {("kar", 0.0), ("roar", 1.0)}]
    assert len(blank) == 4
    assert all(r["accuracy"] == pytest.approx(0.25) for r in blank)


def test_nothing_replaced_equals_plain_retraining(kar_db: str) -> None:
    """KAR at k = 1 and ROAR at k = 0 keep every pixel: the same accuracy as training the
    architecture directly on the unmodified clips with the same seed."""
    _, train, _ = dataset_items("zoo:synthetic", 8, frames=4, size=16, seed=1000)
    _, test, _ = dataset_items("zoo:synthetic", 8, frames=4, size=16, seed=0)
    tr, te = list(train), list(test)

    def u8(items):  # type: ignore[no-untyped-def]
        return native_clips(torch.stack([(it.video * 255).round().to(torch.uint8) for it in items]))

    ytr = torch.tensor([it.label for it in tr])
    yte = torch.tensor([it.label for it in te])
    want = retrain_accuracy("r3d_tiny", u8(tr), ytr, u8(te), yte, seed=0, epochs=1)
    rows = _rows(kar_db)
    full = [r for r in rows if (r["metric"], r["fraction"]) in {("kar", 1.0), ("roar", 0.0)}]
    assert len(full) == 4
    assert all(r["accuracy"] == pytest.approx(want) for r in full)


def test_rerun_computes_nothing(kar_db: str, capsys) -> None:
    assert main(["compare", "--recipes", "gradient", "--db", kar_db, "--no-random", *ARGS]) == 0
    out = capsys.readouterr().out
    assert "kar, roar: 0 retrained points computed" in out
    assert re.search(r"method\s+k=0\s+k=1\n", out)
    con = sqlite3.connect(kar_db)
    try:
        assert con.execute("SELECT COUNT(*) FROM retrain_curves").fetchone()[0] == 8
    finally:
        con.close()


def test_non_zoo_model_needs_an_architecture(tmp_path, model_spec: str, capsys) -> None:
    argv = ["evaluate", "--recipe", "gradient", "--db", str(tmp_path / "x.db"), *ARGS, "--quiet"]
    argv[argv.index("zoo:r3d_tiny")] = model_spec
    assert main(argv) == 3
    assert "set --metric-set kar.architecture=NAME" in capsys.readouterr().err


def test_kar_is_not_a_per_explanation_metric() -> None:
    from removalx.metrics import ensure_metric_plugins

    metric = ensure_metric_plugins().get("metric", "kar").make({})
    with pytest.raises(ConfigError, match="over a data set"):
        metric.score(None, torch.zeros(1), None)


def test_report_draws_the_curves(kar_db: str, tmp_path) -> None:
    pytest.importorskip("matplotlib")
    from removalx.experiments.report import write_report

    out = write_report(kar_db, tmp_path / "r.html")
    page = out.read_text()
    assert "Remove and retrain (KAR / ROAR)" in page
    assert "test accuracy (higher is better)" in page and "test accuracy (lower is better)" in page
    figs = {p.name for p in (tmp_path / "r_figures").iterdir()}
    assert any(n.endswith("kar-retrain.pdf") for n in figs) and any(
        n.endswith("roar-retrain.png") for n in figs
    )
