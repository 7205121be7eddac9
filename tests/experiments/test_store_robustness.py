"""The results database under concurrent writers, damage and bad input; dataset labels; flags."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from removalx.cli.experiments import main
from removalx.core.types import Attribution
from removalx.data.datasets import dataset_items
from removalx.errors import ConfigError, DatasetError, StorageError
from removalx.experiments.runner import make_methods, parse_metrics, run_items
from removalx.experiments.store import Store
from tests.experiments.conftest import GRID

TINY = ["--frames", "4", "--size", "16", "--quiet"]
METRICS = [
    "--metrics",
    "deletion,insertion",
    "--metric-set",
    "deletion.steps=4",
    "--metric-set",
    "insertion.steps=4",
]


def evaluate_argv(db: Path, model_spec: str, n: int = 2) -> list[str]:
    return [
        "evaluate",
        "--recipe",
        "lime3d",
        "--model",
        model_spec,
        "--db",
        str(db),
        "--n-videos",
        str(n),
        *TINY,
        *METRICS,
        *GRID,
    ]


def rows(db: Path, sql: str) -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def filled_db(tmp_path_factory, model_spec) -> Path:
    db = tmp_path_factory.mktemp("filled") / "results.db"
    assert main(evaluate_argv(db, model_spec)) == 0
    return db


# -- two writers --------------------------------------------------------------------------------------
def _attr(value: float) -> Attribution:
    return Attribution(values=torch.full((1, 2, 2), value), target=1, meta={"n_forward": 3})


def test_second_writer_of_a_unit_keeps_the_first(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    a, b = Store(db), Store(db)  # two connections, as two processes would have
    try:
        key = {
            "dataset": "d",
            "item": "i",
            "method": "m",
            "recipe_hash": "h",
            "model": "toy",
            "seed": 0,
            "recipe": None,
        }
        ida, new_a = a.put_explanation(**key, attribution=_attr(1.0), run_id=1)
        idb, new_b = b.put_explanation(**key, attribution=_attr(2.0), run_id=2)
        assert (new_a, new_b) == (True, False) and idb == ida
        assert torch.equal(b.attribution(idb).values, torch.full((1, 2, 2), 1.0))  # the first one is kept
        assert a.put_score(ida, "del", "mh", {}, {"value": 0.25}, 0.0, 1) is True
        assert b.put_score(ida, "del", "mh", {}, {"value": 0.75}, 0.0, 2) is False
        assert a.put_video("d", "i", torch.zeros(1, 2, 2, 3), 0, {}) is True
        assert b.put_video("d", "i", torch.ones(1, 2, 2, 3), 0, {}) is False
    finally:
        a.close()
        b.close()
    assert rows(db, "SELECT id, run_id FROM explanations") == [(ida, 1)]
    assert rows(db, "SELECT explanation_id, value, run_id FROM scores") == [(ida, 0.25, 1)]
    assert rows(db, "SELECT COUNT(*) FROM videos") == [(1,)]


class _StaleStore(Store):
    """A store whose look-ups always miss, as if another run stored everything just after them."""

    def find_explanation(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None

    def has_score(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return False


def test_run_skips_units_another_run_stored_meanwhile(
    filled_db: Path, model_spec: str, tmp_path: Path
) -> None:
    from removalx.core.recipe import parse_overrides
    from removalx.models import load_model

    db = tmp_path / "copy.db"
    db.write_bytes(filled_db.read_bytes())
    before_expl = rows(db, 'SELECT id, item, run_id, "values" FROM explanations ORDER BY id')
    before_scores = rows(db, "SELECT explanation_id, metric, value, run_id FROM scores ORDER BY 1, 2")
    overrides = parse_overrides(GRID[1::2])
    methods = make_methods([("lime3d", "lime3d", overrides)], None)
    metrics = parse_metrics("deletion,insertion", ["deletion.steps=4", "insertion.steps=4"])
    _, items, n = dataset_items("zoo:synthetic", 2, frames=4, size=16)
    store = _StaleStore(db)
    try:
        counts = run_items(
            store, items, n, methods, metrics, load_model(model_spec), model_spec, run_id=99, progress=False
        )
    finally:
        store.close()
    assert (counts.explained, counts.explanations_skipped) == (0, 2)
    assert (counts.scored, counts.scores_skipped) == (0, 4)
    assert rows(db, 'SELECT id, item, run_id, "values" FROM explanations ORDER BY id') == before_expl
    assert rows(db, "SELECT explanation_id, metric, value, run_id FROM scores ORDER BY 1, 2") == before_scores


def test_two_evaluate_processes_on_one_database(tmp_path: Path, model_spec: str) -> None:
    db = tmp_path / "shared.db"
    n = 4
    argv = [*evaluate_argv(db, model_spec, n), "--item-delay", "0.2"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "removalx.cli.experiments", *argv],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    expl = rows(db, "SELECT item, run_id FROM explanations")
    assert len(expl) == n == len({i for i, _ in expl})  # every video once: nothing lost, nothing twice
    scores = rows(db, "SELECT explanation_id, metric FROM scores")
    assert len(scores) == 2 * n == len(set(scores))
    assert {e for e, _ in scores} == {r[0] for r in rows(db, "SELECT id FROM explanations")}
    runs = rows(db, "SELECT id, computed, skipped, finished FROM runs ORDER BY id")
    assert len(runs) == 2 and all(r[3] is not None for r in runs)
    assert sum(r[1] for r in runs) == n  # each explanation computed-and-stored by exactly one run
    assert all(computed + skipped == n for _, computed, skipped, _ in runs)
    by_run = {rid: sum(1 for _, r in expl if r == rid) for rid, *_ in runs}
    assert by_run == {rid: computed for rid, computed, _, _ in runs}


# -- damaged databases --------------------------------------------------------------------------------
def _drop_scores(db: Path) -> None:
    con = sqlite3.connect(db)
    con.execute("DROP TABLE scores")
    con.commit()
    con.close()


def _wrong_columns(db: Path) -> None:
    con = sqlite3.connect(db)
    con.executescript(
        "DROP TABLE explanations; CREATE TABLE explanations (id INTEGER PRIMARY KEY, foo TEXT);"
    )
    con.close()


def _no_unique_key(db: Path) -> None:
    con = sqlite3.connect(db)
    con.executescript(
        "ALTER TABLE explanations RENAME TO old; "
        "CREATE TABLE explanations AS SELECT * FROM old; DROP TABLE old;"
    )
    con.close()


def _not_sqlite(db: Path) -> None:
    db.write_bytes(b"this is not a database\n" * 100)


def _foreign_sqlite(db: Path) -> None:
    db.unlink()
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE contacts (name TEXT)")
    con.commit()
    con.close()


DAMAGE = [
    ("dropped-table", _drop_scores, "missing table scores"),
    ("wrong-columns", _wrong_columns, "table explanations lacks columns dataset, item, method"),
    ("no-unique-key", _no_unique_key, "table explanations lacks the unique key (dataset, item, recipe_hash"),
    ("no-primary-key", _no_unique_key, "table explanations lacks its primary key id INTEGER PRIMARY KEY"),
    ("not-sqlite", _not_sqlite, "is not a removalx results database (file is not a database)"),
    ("foreign-sqlite", _foreign_sqlite, "missing tables runs, experiments, videos, explanations, scores"),
]


def _schema(db: Path) -> list[tuple]:
    if db.read_bytes()[:16] != b"SQLite format 3\0":
        return [("bytes", digest(db))]
    return rows(db, "SELECT type, name, sql FROM sqlite_master ORDER BY name")


@pytest.mark.parametrize(("damage", "needle"), [(d, n) for _, d, n in DAMAGE], ids=[i for i, _, _ in DAMAGE])
@pytest.mark.parametrize("command", ["report", "evaluate"])
def test_damaged_database_is_refused_and_left_alone(
    tmp_path, model_spec, capsys, damage, needle, command
) -> None:
    db = tmp_path / "r.db"
    Store(db).close()  # a valid, empty results database
    damage(db)
    schema = _schema(db)
    argv = (
        ["report", str(db), "--out", str(tmp_path / "r.html")]
        if command == "report"
        else evaluate_argv(db, model_spec)
    )
    assert main(argv) == 3
    err = capsys.readouterr().err
    assert needle in err, err
    assert "Traceback" not in err
    assert _schema(db) == schema  # nothing created, dropped or altered
    assert not (tmp_path / "r.html").exists()


def test_report_opens_read_only(filled_db: Path, tmp_path: Path) -> None:
    before = digest(filled_db)
    assert main(["report", str(filled_db), "--out", str(tmp_path / "r.html")]) == 0
    assert digest(filled_db) == before
    store = Store(filled_db, read_only=True)
    try:
        with pytest.raises(StorageError, match="read-only"):
            store.start_run("evaluate", "x", {})
    finally:
        store.close()
    assert rows(filled_db, "SELECT COUNT(*) FROM runs") == [(1,)]


def test_report_into_a_folder_is_a_clear_error(filled_db: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "r.html").mkdir()
    assert main(["report", str(filled_db), "--out", str(tmp_path / "r.html")]) == 3
    assert "is an existing folder, not a file" in capsys.readouterr().err
    assert os.listdir(tmp_path) == ["r.html"]


def test_db_that_is_a_folder(tmp_path: Path, model_spec: str, capsys) -> None:
    (tmp_path / "r.db").mkdir()
    assert main(evaluate_argv(tmp_path / "r.db", model_spec)) == 3
    assert "is an existing folder, not a file" in capsys.readouterr().err


def test_report_of_a_missing_database_creates_nothing(tmp_path: Path, capsys) -> None:
    db = tmp_path / "nope.db"
    assert main(["report", str(db)]) == 3
    assert "No results database at" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


def test_report_of_an_empty_file_says_what_is_missing(tmp_path: Path, capsys) -> None:
    db = tmp_path / "empty.db"
    db.write_bytes(b"")
    assert main(["report", str(db)]) == 3
    assert "missing tables runs, experiments" in capsys.readouterr().err
    assert db.read_bytes() == b""


@pytest.mark.parametrize(
    ("sql", "needle"),
    [
        ("UPDATE explanations SET \"values\" = x'00ff'", "column values is not a valid .npy array"),
        ("UPDATE experiments SET methods = '[oops'", "column methods is not valid JSON"),
        ("UPDATE scores SET details = '{'", "is not valid JSON"),
    ],
    ids=["values-blob", "experiment-json", "score-details"],
)
def test_damaged_rows_are_a_clear_report_error(filled_db, tmp_path, capsys, sql, needle) -> None:
    db = tmp_path / "copy.db"
    db.write_bytes(filled_db.read_bytes())
    con = sqlite3.connect(db)
    con.execute(sql)
    con.commit()
    con.close()
    assert main(["report", str(db), "--out", str(tmp_path / "r.html")]) == 3
    err = capsys.readouterr().err
    assert needle in err, err
    assert not (tmp_path / "r.html").exists()


def test_evaluate_on_an_empty_file_creates_the_tables(tmp_path: Path) -> None:
    db = tmp_path / "empty.db"
    db.write_bytes(b"")
    Store(db).close()
    names = {n for (n,) in rows(db, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"runs", "experiments", "videos", "explanations", "scores"} <= names


# -- dataset labels -------------------------------------------------------------------------------------
@pytest.fixture
def video_folder(tmp_path: Path) -> Path:
    from removalx.testing import tiny_video
    from removalx.video.io import write_gif

    folder = tmp_path / "videos"
    folder.mkdir()
    for i in range(2):
        frames = (tiny_video(frames=4, size=16, seed=i) * 255).round().to(torch.uint8)
        write_gif(frames, folder / f"clip{i}.gif", fps=4)
    return folder


BAD_LABELS = [
    ("labels.csv", "clip0.gif,cat\n", "labels.csv, line 1: the label of 'clip0.gif' is 'cat'"),
    (
        "labels.csv",
        "file,label\nclip0.gif,1\nclip1.gif,2.5\n",
        "labels.csv, line 3: the label of 'clip1.gif' is '2.5'",
    ),
    ("labels.csv", "file,label\nclip0.gif,-1\n", "line 2: the label of 'clip0.gif' is '-1'"),
    ("labels.csv", "clip0.gif\n", "labels.csv, line 1: expected FILE,LABEL"),
    ("labels.csv", b"clip0.gif,1\n\xff\xfe,2\n", "labels.csv is not UTF-8 text"),
    ("labels.json", '{"clip0.gif": "cat"}', "the label of 'clip0.gif' is \"cat\""),
    ("labels.json", '{"clip0.gif": 1.5}', "the label of 'clip0.gif' is 1.5"),
    ("labels.json", '{"clip0.gif": true}', "the label of 'clip0.gif' is true"),
    ("labels.json", '{"clip0.gif": null}', "the label of 'clip0.gif' is null"),
    ("labels.json", "[1, 2]", "holds a JSON list"),
    ("labels.json", '{"clip0.gif": 1,', "labels.json is not valid JSON"),
    ("labels.json", '{"clip0.gif": ' + "x" * 5000 + "}", "labels.json is not valid JSON"),
]


@pytest.mark.parametrize(("name", "content", "needle"), BAD_LABELS)
def test_bad_labels_name_the_file_and_entry(video_folder: Path, name: str, content, needle: str) -> None:
    path = video_folder / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(DatasetError) as err:
        dataset_items(str(video_folder))
    msg = str(err.value)
    assert needle in msg, msg
    assert str(path) in msg and len(msg) < 1000


def test_good_labels_are_read(video_folder: Path) -> None:
    (video_folder / "labels.csv").write_text("file,label\nclip0.gif,2\n\n")
    (video_folder / "labels.json").write_text('{"clip1": "3", "clip0.gif": 1}')
    _, items, n = dataset_items(str(video_folder), frames=4, size=16)
    assert n == 2
    assert [(it.item.split("-")[0], it.label) for it in items] == [
        ("clip0.gif", 2),
        ("clip1.gif", 3),
    ]  # CSV wins


def test_bad_labels_exit_3_before_any_work(video_folder: Path, model_spec: str, capsys) -> None:
    (video_folder / "labels.csv").write_text("clip0.gif,two\n")
    db = video_folder.parent / "d.db"
    argv = [
        "evaluate",
        "--recipe",
        "lime3d",
        "--dataset",
        str(video_folder),
        "--model",
        model_spec,
        "--db",
        str(db),
        *TINY,
        *METRICS,
        *GRID,
    ]
    assert main(argv) == 3
    assert "line 1: the label of 'clip0.gif' is 'two'" in capsys.readouterr().err
    assert rows(db, "SELECT COUNT(*) FROM explanations") == [(0,)]


# -- flags ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--batch-size", "0"),
        ("--batch-size", "-4"),
        ("--n-videos", "0"),
        ("--n-videos", "-2"),
        ("--frames", "0"),
        ("--size", "-1"),
        ("--batch-size", "two"),
        ("--item-delay", "-1"),
    ],
)
def test_non_positive_counts_are_usage_errors(tmp_path: Path, capsys, flag: str, value: str) -> None:
    db = tmp_path / "x.db"
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", "--recipe", "lime3d", "--db", str(db), flag, value])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert flag in err and value in err
    assert not db.exists()


def test_report_max_videos_must_not_be_negative(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["report", "x.db", "--max-videos", "-1"])
    assert exc.value.code == 2 and "--max-videos" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("metrics", "needle"),
    [
        ("a=deletion,a=insertion", "names the label 'a' twice (deletion and insertion)"),
        ("deletion,deletion", "names the label 'deletion' twice"),
        ("deletion,=insertion", "has an empty label or plugin name"),
        ("a=", "has an empty label or plugin name"),
    ],
)
def test_bad_metric_lists_exit_3(tmp_path: Path, model_spec: str, capsys, metrics: str, needle: str) -> None:
    db = tmp_path / "x.db"
    assert (
        main(["evaluate", "--recipe", "lime3d", "--model", model_spec, "--db", str(db), "--metrics", metrics])
        == 3
    )
    assert needle in capsys.readouterr().err
    assert not db.exists()


def test_metric_aliases_keep_both_metrics() -> None:  # the oracle of the duplicate check
    specs = parse_metrics("a=deletion,b=deletion,insertion")
    assert [(m.label, m.name) for m in specs] == [
        ("a", "deletion"),
        ("b", "deletion"),
        ("insertion", "insertion"),
    ]
    with pytest.raises(ConfigError, match="twice"):
        parse_metrics("a=deletion,a=deletion")


def test_bad_export_name_fails_before_the_run(tmp_path: Path, model_spec: str, capsys) -> None:
    db = tmp_path / "x.db"
    argv = [*evaluate_argv(db, model_spec), "--export", str(tmp_path / "out.xlsx")]
    assert main(argv) == 3
    assert "unknown format '.xlsx'" in capsys.readouterr().err
    assert not db.exists()


def test_dataset_items_rejects_non_positive_counts() -> None:
    for n in (0, -2):
        with pytest.raises(ConfigError, match="n_videos must be a positive integer"):
            dataset_items("zoo:synthetic", n)
