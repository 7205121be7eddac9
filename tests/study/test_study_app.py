"""The rating app through its HTTP interface: blindness, tokens, ids, validated answers, creation."""

from __future__ import annotations

import re
import sqlite3
import warnings
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="needs the study extra: pip install 'removalx[study]'")
pytest.importorskip("httpx", reason="Starlette's TestClient needs httpx (the study extra)")

with warnings.catch_warnings():  # Starlette >= 1.x suggests httpx2; httpx still works
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from removalx.cli.experiments import main
from removalx.experiments.study.app import make_app
from removalx.experiments.study.db import StudyDB
from tests.study.conftest import hidden_strings, new_study

BASE = "http://127.0.0.1"


def _client(db: Path, name: str, **kw) -> TestClient:
    return TestClient(make_app(str(db), name, **kw), base_url=BASE, follow_redirects=False)


def _tokens(db: Path, name: str) -> dict[str, str]:
    sdb = StudyDB(db, read_only=True)
    try:
        return {r["rater"]: r["token"] for r in sdb.raters(name)}
    finally:
        sdb.close()


def _answers(db: Path, name: str) -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        return con.execute(
            "SELECT rater, item, score FROM study_answers WHERE study = ? ORDER BY rater, item", (name,)
        ).fetchall()
    finally:
        con.close()


@pytest.fixture(scope="module")
def sec_study(study_db) -> str:
    new_study(study_db, "sec", "--raters", "alice,bob", "--seed", "3")
    return "sec"


def _crawl(client: TestClient, token: str) -> dict[str, bytes]:
    """Every response a rater can get: start page, all items with their media, overview, assets."""
    seen: dict[str, bytes] = {}
    todo = ["/", "/static/study.css", "/static/study.js", f"/r/{token}/", f"/r/{token}/done"]
    while todo:
        url = todo.pop()
        if url in seen:
            continue
        resp = client.get(url)
        assert resp.status_code in (200, 303), (url, resp.status_code)
        seen[url] = resp.content + str(dict(resp.headers)).encode()
        if "location" in resp.headers:
            todo.append(resp.headers["location"])
        if resp.headers.get("content-type", "").startswith("text/html"):
            todo += re.findall(r"(?:href|src|action)='([^']+)'", resp.text)
            todo = [u for u in todo if not u.endswith(("/answer", "/finish", "/start"))]
    return seen


def test_no_name_reaches_a_rater(study_db, sec_study):
    client = _client(study_db, sec_study)
    token = _tokens(study_db, sec_study)["alice"]
    seen = _crawl(client, token)
    items = [u for u in seen if "/i/" in u]
    assert len(items) == 6 and len([u for u in seen if "/media/" in u]) == 6
    # also the error pages a rater can provoke
    for url in ("/r/" + "x" * 22 + "/", f"/r/{token}/i/0000000000000000", "/nope"):
        seen[url] = client.get(url).content
    seen["bad answer"] = client.post(f"/r/{token}/answer", data={"item": "zz", "score": "9"}).content
    hidden = hidden_strings(study_db)
    assert "lime3d" in hidden and "zoo:r3d_tiny" in hidden and "zoo:synthetic" in hidden
    for url, body in seen.items():
        binary = "/media/" in url or "/legend/" in url
        text = body if binary else body.lower()
        for name in hidden:
            needle = name.encode() if binary else name.lower().encode()
            assert needle not in text, f"{name!r} is visible in {url}"
    # the item ids are random: nothing in them orders or names the items
    ids = [u.rsplit("/", 1)[1] for u in items]
    assert all(re.fullmatch(r"[0-9a-f]{16}", i) for i in ids) and len(set(ids)) == 6


def test_every_route_checks_the_token(study_db, sec_study):
    client = _client(study_db, sec_study)
    token = _tokens(study_db, sec_study)["alice"]
    iid = client.get(f"/r/{token}/").headers["location"].rsplit("/", 1)[1]
    for bad in ("A" * 22, token[:-1] + ("A" if token[-1] != "A" else "B"), "short", token + "x"):
        for method, url in [
            ("get", f"/r/{bad}/"),
            ("get", f"/r/{bad}/i/{iid}"),
            ("get", f"/r/{bad}/media/{iid}"),
            ("get", f"/r/{bad}/legend/{iid}"),
            ("get", f"/r/{bad}/done"),
            ("post", f"/r/{bad}/answer"),
            ("post", f"/r/{bad}/finish"),
        ]:
            resp = client.post(url, data={"item": iid, "score": "1"}) if method == "post" else client.get(url)
            assert resp.status_code == 404, (url, resp.status_code)
    assert _answers(study_db, sec_study) == []


def test_media_are_served_by_id_only(study_db, sec_study):
    client = _client(study_db, sec_study)
    token = _tokens(study_db, sec_study)["bob"]
    iid = client.get(f"/r/{token}/").headers["location"].rsplit("/", 1)[1]
    ok = client.get(f"/r/{token}/media/{iid}")
    assert ok.status_code == 200 and ok.headers["content-type"] == "image/gif" and ok.content[:6] == b"GIF89a"
    assert client.get(f"/r/{token}/legend/{iid}").content[:4] == b"\x89PNG"
    for evil in ("..%2F..%2Fetc%2Fpasswd", "%2e%2e", "1", iid.upper(), iid + "0", str(study_db)):
        assert client.get(f"/r/{token}/media/{evil}").status_code == 404, evil
    assert client.get(f"/r/{token}/media/../../../etc/passwd").status_code == 404


@pytest.mark.parametrize(
    "data",
    [
        {"score": "3"},
        {"score": "-3"},
        {"score": "1.5"},
        {"score": "two"},
        {"score": ""},
        {"score": "1e0"},
        {},
        {"item": "0123456789abcdef", "score": "1"},
        {"item": "../etc", "score": "1"},
    ],
)
def test_invalid_answers_are_refused(study_db, sec_study, data):
    client = _client(study_db, sec_study)
    token = _tokens(study_db, sec_study)["bob"]
    iid = client.get(f"/r/{token}/").headers["location"].rsplit("/", 1)[1]
    resp = client.post(f"/r/{token}/answer", data={"item": iid, **data})
    assert resp.status_code == 400
    assert all(r[0] != "bob" for r in _answers(study_db, sec_study))


def test_requests_from_elsewhere_are_refused(study_db, sec_study):
    client = _client(study_db, sec_study)
    token = _tokens(study_db, sec_study)["bob"]
    iid = client.get(f"/r/{token}/").headers["location"].rsplit("/", 1)[1]
    assert client.get("/", headers={"host": "evil.example"}).status_code == 400  # DNS rebinding
    cross = client.post(
        f"/r/{token}/answer", data={"item": iid, "score": "1"}, headers={"origin": "http://evil.example"}
    )
    assert cross.status_code == 403
    fetch = client.post(
        f"/r/{token}/answer", data={"item": iid, "score": "1"}, headers={"sec-fetch-site": "cross-site"}
    )
    assert fetch.status_code == 403
    big = client.post(f"/r/{token}/answer", content=b"item=" + b"a" * 10000, headers={"content-type": "x"})
    assert big.status_code == 413  # longer than 4 KB: refused unread
    assert all(r[0] != "bob" for r in _answers(study_db, sec_study))
    page = client.get(f"/r/{token}/i/{iid}")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["referrer-policy"] == "no-referrer" and page.headers["cache-control"] == "no-store"


def test_answers_change_until_the_rater_finishes(study_db):
    new_study(study_db, "flow", "--raters", "carol")
    client = _client(study_db, "flow")
    token = _tokens(study_db, "flow")["carol"]
    loc = client.get(f"/r/{token}/").headers["location"]
    first = loc.rsplit("/", 1)[1]
    assert client.post(f"/r/{token}/finish").status_code == 409  # not everything answered
    for score in ("-2", "1"):  # changed before finishing: one row, the last answer
        client.post(f"/r/{token}/answer", data={"item": first, "score": score})
    assert [(r[1], r[2]) for r in _answers(study_db, "flow")] == [(first, 1)]
    for _ in range(10):
        loc = client.get(f"/r/{token}/").headers["location"]
        if loc.endswith("/done"):
            break
        client.post(f"/r/{token}/answer", data={"item": loc.rsplit("/", 1)[1], "score": "0"})
    assert len(_answers(study_db, "flow")) == 6
    assert client.post(f"/r/{token}/finish").status_code == 303
    late = client.post(f"/r/{token}/answer", data={"item": first, "score": "2"})
    assert late.status_code == 409
    assert dict((r[1], r[2]) for r in _answers(study_db, "flow"))[first] == 1
    assert "Thank you" in client.get(f"/r/{token}/done").text


def test_rater_id_form_only_on_loopback(study_db, sec_study):
    client = _client(study_db, sec_study)
    assert "name='rater'" in client.get("/").text
    resp = client.post("/start", data={"rater": "dave"})
    assert (
        resp.status_code == 303 and resp.headers["location"] == f"/r/{_tokens(study_db, sec_study)['dave']}/"
    )
    again = client.post("/start", data={"rater": "dave"})  # resume with the same id
    assert again.headers["location"] == resp.headers["location"]
    assert client.post("/start", data={"rater": "<script>"}).status_code == 400
    locked = _client(study_db, sec_study, tokens_required=True)
    assert "name='rater'" not in locked.get("/").text
    assert locked.post("/start", data={"rater": "eve"}).status_code == 403
    assert "eve" not in _tokens(study_db, sec_study)


def test_serve_warns_and_requires_tokens_off_loopback(study_db, sec_study, monkeypatch, capsys):
    import uvicorn

    served = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: served.update(app=app, **kw))
    assert main(["study", "serve", "--db", str(study_db), "--name", sec_study, "--host", "0.0.0.0"]) == 0
    err = capsys.readouterr().err
    assert "warning" in err and "invite links" in err
    client = TestClient(served["app"], base_url="http://192.0.2.7", follow_redirects=False)
    assert client.post("/start", data={"rater": "mallory"}).status_code == 403
    assert served["host"] == "0.0.0.0"
    assert main(["study", "serve", "--db", str(study_db), "--name", sec_study]) == 0
    assert served["host"] == "127.0.0.1" and "warning" not in capsys.readouterr().err


def test_create_errors_are_clear(study_db, capsys):
    assert main(["study", "create", "--db", str(study_db), "--name", "base"]) == 3
    assert "exists already" in capsys.readouterr().err
    assert main(["study", "create", "--db", str(study_db), "--name", "x", "--raters", "a b"]) == 3
    assert "Invalid rater id" in capsys.readouterr().err
    assert main(["study", "results", "--db", str(study_db), "--name", "nope"]) == 3
    assert "No study named 'nope'" in capsys.readouterr().err


def test_missing_extra_names_the_install_command(monkeypatch):
    import builtins

    from removalx.experiments.study import StudyDependencyError, require

    real = builtins.__import__

    def fake(name, *a, **kw):
        if name.startswith("krippendorff"):
            raise ImportError(name)
        return real(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", fake)
    monkeypatch.delitem(__import__("sys").modules, "krippendorff", raising=False)
    with pytest.raises(StudyDependencyError, match=r"removalx\[study\]"):
        require("krippendorff", "alpha")


def test_report_has_a_user_study_section(study_db, tmp_path):
    new_study(study_db, "rep", "--raters", "r1,r2")
    client = _client(study_db, "rep")
    tokens = _tokens(study_db, "rep")
    for rater, score in (("r1", "2"), ("r2", "-1")):
        iid = client.get(f"/r/{tokens[rater]}/").headers["location"].rsplit("/", 1)[1]
        client.post(f"/r/{tokens[rater]}/answer", data={"item": iid, "score": score})
    out = tmp_path / "report.html"
    assert main(["report", str(study_db), "--out", str(out)]) == 0
    page = out.read_text()
    section = page[page.index("<h2>User study</h2>") :]
    assert "<h3>rep " in section and "2 answers" in section and "Krippendorff" in section
    assert "<td>lime3d</td>" in section or "<td>rise3d</td>" in section
