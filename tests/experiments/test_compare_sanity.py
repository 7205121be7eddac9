"""``compare --sanity``: the added metrics, the verdicts and their marking in the table."""

from __future__ import annotations

import math

import pytest

from removalx.experiments.sanity import (
    THRESHOLD_SOURCE,
    failures,
    mark_rows,
    sanity_lines,
    with_sanity_metrics,
)

TINY = ["--n-videos", "2", "--frames", "4", "--size", "16", "--quiet"]


def test_sanity_metrics_are_added_once():
    assert with_sanity_metrics("deletion") == "deletion,mprt,random_logit"
    assert with_sanity_metrics(["mprt", "insertion"]) == "mprt,insertion,random_logit"
    assert with_sanity_metrics("mprt=mprt,random_logit") == "mprt=mprt,random_logit"


def test_verdicts_use_the_stated_threshold():
    rows = [
        {"method": "a", "mprt": {"mean": 0.51}, "random_logit": {"mean": 0.1}},
        {"method": "b", "mprt": {"mean": 0.5}, "random_logit": {"mean": 0.5}},  # not above: passes
        {"method": "c", "mprt": {"mean": math.nan}, "random_logit": {"mean": 0.9}},
    ]
    assert failures(rows) == {"a": ["mprt"], "b": [], "c": ["random_logit"]}
    assert [r["method"] for r in mark_rows(rows)] == ["a [fails: mprt]", "b", "c [fails: random_logit]"]
    lines = sanity_lines(rows)
    assert lines[0] == "sanity: 2 of 3 methods fail (a, c)" and lines[1] == THRESHOLD_SOURCE
    assert "removalx's choice" in THRESHOLD_SOURCE


def test_compare_sanity_cli_marks_the_random_baseline(tmp_path, model_spec, capsys):
    pytest.importorskip("pandas")
    from removalx.cli.experiments import main

    db = str(tmp_path / "s.db")
    args = ["compare", "--recipes", "gradient", "--sanity", "--metrics", "deletion", "--model", model_spec]
    assert main([*args, "--db", db, *TINY]) == 0
    out = capsys.readouterr().out
    # the random map does not depend on the model or the class: MPRT and random logit are 1
    assert "random [fails: mprt, random_logit]" in out
    assert "sanity:" in out and "removalx's choice" in out
    from removalx.experiments.store import Store

    store = Store(db)
    try:
        metrics = {s["metric"] for s in store.scores()}
    finally:
        store.close()
    assert {"mprt", "random_logit", "deletion"} <= metrics  # stored like any metric


def test_compare_api_sanity_column(tmp_path, model_spec):
    pytest.importorskip("pandas")
    from removalx.experiments.api import compare

    res = compare(
        "gradient",
        tmp_path / "a.db",
        sanity=True,
        metrics="mprt",
        model=model_spec,
        n_videos=2,
        frames=4,
        size=16,
        progress=False,
    )
    fails = dict(zip(res.summary["method"], res.summary["sanity_fails"]))
    assert fails["random"] == "mprt, random_logit"
    assert any(n.startswith("sanity:") for n in res.notes)
