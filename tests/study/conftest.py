"""Shared fixture of the study tests: an experiment database with 2 recipes x 3 tiny clips."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from removalx.cli.experiments import main

#: Six explanations: lime3d and rise3d on three 8x32x32 zoo:synthetic clips, 16 samples on a 2x2x2 grid.
CREATE = [
    "--recipes",
    "lime3d,rise3d",
    "--videos",
    "3",
    "--frames",
    "8",
    "--size",
    "32",
    "--set",
    "segmentation.name=grid3d",
    "--set",
    "segmentation.cells=[2,2,2]",
    "--set",
    "sample_selection.n_samples=16",
    "--quiet",
]

#: Everything a rater must never learn: the methods, the model, the dataset, the clips' names.
HIDDEN = ["lime", "rise", "r3d", "zoo", "synthetic", "grid3d", "heatmap", "posneg", "explanation_id"]


@pytest.fixture(scope="session")
def study_db(tmp_path_factory) -> Path:
    """A database whose first study ``base`` was created with ``--recipes`` (explained on the way)."""
    db = tmp_path_factory.mktemp("study") / "runs.db"
    assert main(["study", "create", "--db", str(db), "--name", "base", *CREATE]) == 0
    return db


def new_study(db: Path, name: str, *extra: str) -> None:
    """Another study over the stored explanations (no explaining, only rendering)."""
    assert main(["study", "create", "--db", str(db), "--name", name, *extra]) == 0


def hidden_strings(db: Path) -> list[str]:
    """``HIDDEN`` plus every stored method, model, dataset and clip name."""
    con = sqlite3.connect(db)
    try:
        rows = con.execute("SELECT DISTINCT method, model, dataset, item FROM explanations").fetchall()
    finally:
        con.close()
    return sorted({*HIDDEN, *(str(x) for r in rows for x in r)})
