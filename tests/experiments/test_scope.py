"""Tables of one experiment read only its own model's and data set's rows of a shared database."""

from __future__ import annotations

import json
import sqlite3

from removalx.cli import main

from .conftest import TINY

FAST = ["--metrics", "deletion", "--metric-set", "deletion.steps=4"]


def test_two_models_in_one_database_do_not_mix(tmp_path, model_spec: str) -> None:
    db = str(tmp_path / "runs.db")
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    base = ["evaluate", "--recipe", "gradient", "--db", db, *TINY, *FAST]
    assert main([*base, "--model", "zoo:r3d_tiny", "--export", str(first)]) == 0
    assert main([*base, "--model", model_spec, "--export", str(second), "--data-seed", "5"]) == 0
    con = sqlite3.connect(db)
    try:
        assert con.execute("SELECT COUNT(*) FROM explanations").fetchone()[0] == 4
        want = [
            v
            for (v,) in con.execute(
                "SELECT s.value FROM scores s JOIN explanations e ON e.id = s.explanation_id WHERE e.model = ?",
                (model_spec,),
            )
        ]
    finally:
        con.close()
    data = json.loads(second.read_text())
    assert {s["model"] for s in data["scores"]} == {model_spec} and len(data["scores"]) == 2
    row = data["aggregate"][0]
    assert row["n_videos"] == 2
    assert row["deletion"]["mean"] == sum(want) / len(want)
    assert row["n_backward"] == 1  # the gradient: one backward pass per explanation
