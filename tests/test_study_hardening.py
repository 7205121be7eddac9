"""Issue 27 §3.4, §3.5, §3.12: the study server's body cap, CSV cells, invited raters, legends, flags."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import sqlite3
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from removalx.cli.experiments import main
from removalx.core.types import Attribution
from removalx.files.csv_cells import safe_cell, write_csv_rows
from tests.study.conftest import new_study, study_db  # noqa: F401  (the session fixture)

pytest.importorskip("starlette", reason="needs the study extra: pip install 'removalx[study]'")
pytest.importorskip("httpx", reason="Starlette's TestClient needs httpx (the study extra)")

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from removalx.experiments.study.app import MAX_BODY, make_app
from removalx.experiments.study.db import StudyDB

BASE = "http://127.0.0.1"


def _tokens(db: Path, name: str) -> dict[str, str]:
    sdb = StudyDB(db, read_only=True)
    try:
        return {r["rater"]: r["token"] for r in sdb.raters(name)}
    finally:
        sdb.close()


@pytest.fixture(scope="module")
def hard_study(study_db) -> str:  # noqa: F811
    new_study(study_db, "hard", "--raters", "alice,bob")
    return "hard"


# -- §3.4: the body is never read past the cap ---------------------------------------------------
class _Body:
    """An ASGI ``receive`` serving ``chunks`` chunks of ``size`` bytes; counts what was taken."""

    def __init__(self, chunks: int, size: int = 1024) -> None:
        self.left, self.size, self.calls = chunks, size, 0

    async def __call__(self) -> dict:
        self.calls += 1
        if self.left <= 0:
            return {"type": "http.disconnect"}
        self.left -= 1
        return {"type": "http.request", "body": b"a" * self.size, "more_body": self.left > 0}


def _post(app, path: str, headers: list[tuple[bytes, bytes]], receive: _Body) -> int:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/x-www-form-urlencoded"),
            *headers,
        ],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }
    status: list[int] = []

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    asyncio.run(app(scope, receive, send))
    return status[0]


def test_a_huge_declared_body_is_refused_unread(study_db, hard_study):  # noqa: F811
    app = make_app(str(study_db), hard_study)
    token = _tokens(study_db, hard_study)["alice"]
    for path in ("/start", f"/r/{token}/answer"):
        body = _Body(chunks=1, size=16)  # says 1 GiB, sends 16 bytes
        assert _post(app, path, [(b"content-length", str(2**30).encode())], body) == 413
        assert body.calls == 0  # not one byte read


def test_a_chunked_body_past_the_cap_is_abandoned(study_db, hard_study):  # noqa: F811
    app = make_app(str(study_db), hard_study)
    token = _tokens(study_db, hard_study)["alice"]
    for path in ("/start", f"/r/{token}/answer"):
        body = _Body(chunks=2**20)  # 1 GiB in 1 KB chunks, no Content-Length (chunked)
        assert _post(app, path, [(b"transfer-encoding", b"chunked")], body) == 413
        # the server stopped after the first chunk past 4 KB: 5 of the 2**20 chunks were read
        assert body.calls == MAX_BODY // 1024 + 1 and body.left == 2**20 - body.calls


def test_a_small_body_still_works(study_db, hard_study):  # noqa: F811
    app = make_app(str(study_db), hard_study)
    body = _Body(chunks=0)
    body.left, body.size = 1, 0  # one empty chunk: an empty form -> invalid rater id, not 413
    assert _post(app, "/start", [(b"content-length", b"0")], body) == 400
    client = TestClient(app, base_url=BASE, follow_redirects=False)
    assert client.post("/start", data={"rater": "carol"}).status_code == 303


# -- §3.12: invited raters enter by their link only ----------------------------------------------
def test_an_invited_rater_id_gives_no_session_on_the_start_page(study_db, hard_study):  # noqa: F811
    client = TestClient(make_app(str(study_db), hard_study), base_url=BASE, follow_redirects=False)
    refused = client.post("/start", data={"rater": "alice"})
    assert refused.status_code == 403 and _tokens(study_db, hard_study)["alice"] not in refused.text
    assert "invite link" in refused.text
    # a self-registered rater still resumes by id
    first = client.post("/start", data={"rater": "dora"})
    assert (
        first.status_code == 303
        and client.post("/start", data={"rater": "dora"}).headers["location"] == first.headers["location"]
    )


def test_studies_without_the_invited_list_refuse_their_invited_raters_too(study_db):  # noqa: F811
    new_study(study_db, "old_style", "--raters", "erin")
    con = sqlite3.connect(study_db)
    try:
        args = json.loads(con.execute("SELECT args FROM studies WHERE name = 'old_style'").fetchone()[0])
        assert args.pop("invited") == ["erin"]
        con.execute("UPDATE studies SET args = ? WHERE name = 'old_style'", (json.dumps(args),))
        con.commit()
    finally:
        con.close()
    client = TestClient(make_app(str(study_db), "old_style"), base_url=BASE, follow_redirects=False)
    assert client.post("/start", data={"rater": "erin"}).status_code == 403
    assert client.post("/start", data={"rater": "fred"}).status_code == 303


# -- §3.12: one legend direction for every item -------------------------------------------------
def _luminance(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as im:
        row = np.asarray(im.convert("RGB"), dtype=np.float64)[0]
    return row @ np.array([0.299, 0.587, 0.114])


@pytest.mark.parametrize("important", ["hot", "cold"])
def test_every_study_legend_runs_dark_to_bright(important):
    from removalx.experiments.study.create import render_item

    torch.manual_seed(0)
    values = torch.rand(4, 8, 8)
    vis = {"name": "heatmap", "important": important, "negatives": "drop"}
    attr = Attribution(values, 0, meta={"recipe": {"visualization": vis}})
    _, legend, _, _ = render_item(torch.rand(4, 8, 8, 3), attr, 6.0)
    lum = _luminance(legend)
    # left (least important) dark, right (most important) bright, for occlusion3d's cold maps too
    assert lum[-1] - lum[0] > 150 and np.all(np.diff(lum) >= -1)


# -- §3.12: create refuses bad flags, exits 3 (or 2 at parse time), leaves no file -----------------
def test_create_refuses_empty_raters_name_and_huge_seed(tmp_path, capsys):
    db = tmp_path / "missing.db"
    assert main(["study", "create", "--db", str(db), "--name", "x", "--raters", ","]) == 3
    assert "empty rater id" in capsys.readouterr().err
    assert main(["study", "create", "--db", str(db), "--name", "x", "--raters", "a,,b"]) == 3
    assert main(["study", "create", "--db", str(db), "--name", ""]) == 3
    assert "Invalid study name" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["study", "create", "--db", str(db), "--name", "x", "--seed", str(10**23)])
    assert exc.value.code == 2 and "at most" in capsys.readouterr().err
    assert main(["study", "create", "--db", str(db), "--name", "x"]) == 3  # nothing to rate
    assert "does not exist" in capsys.readouterr().err
    assert not db.exists() and list(tmp_path.iterdir()) == []


def test_a_failed_create_on_a_new_database_removes_it(tmp_path, monkeypatch):
    from removalx.experiments.study import StudyError, create

    def boom(spec, store):
        raise StudyError("no clip", "test")

    monkeypatch.setattr(create, "_run_recipes", boom)
    db = tmp_path / "new.db"
    spec = create.StudySpec(name="s", recipes=["lime3d"])
    with pytest.raises(StudyError):
        create.create_study(db, spec)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(StudyError, match="out of range"):
        create.create_study(db, create.StudySpec(name="s", seed=10**23))


# -- §3.5: CSV cells a spreadsheet would run ---------------------------------------------------------
def test_safe_cell_quotes_formula_text_and_keeps_numbers():
    for text in ('=HYPERLINK("evil").gif', "+1", "-cmd", "@SUM(A1)", "\tx", "\rx"):
        assert safe_cell(text) == "'" + text
    assert safe_cell("clip.gif") == "clip.gif" and safe_cell("a=b") == "a=b"
    assert safe_cell(-0.5) == -0.5 and safe_cell(-3) == -3 and safe_cell(None) is None
    buf = io.StringIO()
    write_csv_rows(buf, ["item", "value"], [{"item": "=1+1", "value": -0.5}, ["-2+3", 1.0]])
    rows = list(csv.reader(io.StringIO(buf.getvalue())))
    assert rows == [["item", "value"], ["'=1+1", "-0.5"], ["'-2+3", "1.0"]]


def test_export_csv_guards_a_hostile_clip_name(tmp_path):
    from removalx.cli.experiments import _export
    from removalx.experiments.frames import EXPORT_COLUMNS

    row = {k: None for k in EXPORT_COLUMNS}
    row.update(dataset="d", item='=HYPERLINK("evil").gif', method="m", metric="deletion", value=-0.5, seed=0)

    class Store:
        def scores(self):
            return [row]

    class Scope:
        def admits(self, s):
            return True

    out = tmp_path / "scores.csv"
    _export(str(out), Store(), ["m"], ["deletion"], Scope(), {})
    text = out.read_bytes().decode("utf-8")
    got = list(csv.DictReader(io.StringIO(text)))
    assert got[0]["item"] == '\'=HYPERLINK("evil").gif' and got[0]["value"] == "-0.5"
    assert text.count("\r\n") == 2  # the export's line ends are unchanged
