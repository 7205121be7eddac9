"""Two raters rate a 6-item study in headless Chromium, as people would (Playwright).

Playwright for Python drives Debian's Chromium (``/usr/bin/chromium``; Playwright's own browser
download is not used). ``removalx study serve`` runs as a real server process. Alice answers
with the keyboard, closes her browser half-way and resumes from her invite link in a fresh
profile; Bob answers with the mouse and changes one answer from the overview. The answers
must be in the database and ``study results`` must give the means and Krippendorff's alpha
of the scripted answers. A screenshot of the rating page is saved as a test artefact
(``$REMOVALX_ARTIFACTS/study_rating_page.png`` when that variable is set).
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from removalx.cli.experiments import main
from tests.study.conftest import hidden_strings, new_study
from tests.study.test_study_stats import _alpha_oracle

CHROMIUM = os.environ.get("REMOVALX_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

#: The scripted answers: rater -> method -> scores of the 1st, 2nd and 3rd video.
SCRIPT = {
    "alice": {"lime3d": [2, 1, 1], "rise3d": [-1, 0, -2]},
    "bob": {"lime3d": [2, 2, 0], "rise3d": [-1, -1, -2]},
}


def _need_browser() -> None:
    problem = None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problem = "playwright is not installed (pip install 'removalx[study]')"
    if problem is None and not Path(CHROMIUM).is_file():
        problem = f"{CHROMIUM} is missing (Debian: apt-get install -y chromium)"
    if problem is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the study browser test must run in CI, but {problem}")
        pytest.skip(problem)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(study_db):
    _need_browser()
    new_study(study_db, "browser", "--raters", "alice,bob", "--seed", "5")
    port = _free_port()
    cmd = [sys.executable, "-m", "removalx.cli", "study", "serve", "--db", str(study_db), "--name", "browser"]
    proc = subprocess.Popen(
        [*cmd, "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    try:
        while True:
            try:
                urllib.request.urlopen(base + "/", timeout=2).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    out = proc.stdout.read() if proc.stdout else ""
                    pytest.fail(f"study serve did not start: {out[-2000:]}")
                time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def _meta(db: Path) -> tuple[dict[str, tuple[str, int]], dict[str, str]]:
    """Item id -> (method, video index) and rater -> token (what the test knows, the page does not)."""
    con = sqlite3.connect(db)
    try:
        rows = con.execute(
            "SELECT id, method, item FROM study_items WHERE study = 'browser' ORDER BY position"
        ).fetchall()
        tokens = dict(con.execute("SELECT rater, token FROM study_raters WHERE study = 'browser'").fetchall())
    finally:
        con.close()
    videos = sorted({r[2] for r in rows})
    return {r[0]: (r[1], videos.index(r[2])) for r in rows}, tokens


class Rater:
    """One rater's browser: a fresh Chromium profile, every request and console error recorded."""

    def __init__(self, pw, profile: Path, base: str) -> None:
        self.ctx = pw.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            headless=True,
            args=ARGS,
            viewport={"width": 1000, "height": 820},
        )
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.ctx.on("request", lambda r: self.requests.append(r.url))
        self.page = self.ctx.new_page()
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.base = base

    def item_id(self) -> str:
        return self.page.url.rsplit("/", 1)[1]

    def progress(self) -> str:
        return self.page.inner_text("#progress")

    def close(self) -> None:
        self.ctx.close()


def _keys(score: int, i: int) -> list[str]:
    """Alternate the two keyboard schemes: 1-5, or the sign and the digit (0 alone)."""
    if i % 2 == 0 or score == 0:
        return [str(score + 3)] if i % 2 == 0 else ["0"]
    return ["-" if score < 0 else "+", str(abs(score))]


def _check_page(r: Rater, hidden: list[str]) -> None:
    ok = r.page.evaluate(
        "() => [...document.images].every(im => im.complete && im.naturalWidth > 0) && document.images.length"
    )
    assert ok == 2, "the media and the legend must load"
    text = r.page.content().lower()
    for name in hidden:
        assert name.lower() not in text, f"{name!r} visible in the rating page"
    assert r.page.inner_text("#question") == (
        "Do the highlighted regions used in the classification seem reasonable?"
    )


def test_two_raters_rate_resume_and_results(server, study_db, tmp_path):
    from playwright.sync_api import sync_playwright

    items, tokens = _meta(study_db)
    hidden = hidden_strings(study_db)
    want = {r: {iid: SCRIPT[r][m][v] for iid, (m, v) in items.items()} for r in SCRIPT}
    seen_orders: dict[str, list[str]] = {}
    with sync_playwright() as pw:
        # -- Alice: keyboard; closes her browser after three items and resumes in a fresh profile.
        alice = Rater(pw, tmp_path / "alice1", server)
        alice.page.goto(f"{server}/r/{tokens['alice']}/")
        order = []
        for i in range(3):
            assert alice.progress() == f"{i + 1} / 6"
            _check_page(alice, hidden)
            iid = alice.item_id()
            order.append(iid)
            with alice.page.expect_navigation():
                for k in _keys(want["alice"][iid], i):
                    alice.page.keyboard.type(k)
            if i == 0:
                shot = Path(os.environ.get("REMOVALX_ARTIFACTS", tmp_path)) / "study_rating_page.png"
                nxt = alice.page.url
                alice.page.goto(f"{server}/r/{tokens['alice']}/i/{iid}")  # the answered item, as stored
                shot.parent.mkdir(parents=True, exist_ok=True)
                alice.page.screenshot(path=str(shot), full_page=True)
                assert shot.stat().st_size > 10_000
                assert alice.page.get_attribute("button.score.chosen", "value") == str(want["alice"][iid])
                alice.page.goto(nxt)
        errors, requests = list(alice.errors), list(alice.requests)
        alice.close()
        alice = Rater(pw, tmp_path / "alice2", server)  # a new browser: only the invite link is known
        alice.page.goto(f"{server}/r/{tokens['alice']}/")
        assert alice.progress() == "4 / 6" and alice.page.inner_text("#answered") == "answered 3"
        for i in range(3, 6):
            iid = alice.item_id()
            order.append(iid)
            with alice.page.expect_navigation():
                for k in _keys(want["alice"][iid], i):
                    alice.page.keyboard.type(k)
        assert alice.page.url.endswith("/done")
        with alice.page.expect_navigation():
            alice.page.click("#finish")
        assert alice.page.inner_text("#thanks").startswith("Thank you")
        seen_orders["alice"] = order
        errors += alice.errors
        requests += alice.requests
        alice.close()

        # -- Bob: mouse; answers his first item wrongly, then corrects it from the overview.
        bob = Rater(pw, tmp_path / "bob", server)
        bob.page.goto(f"{server}/r/{tokens['bob']}/")
        order = []
        for i in range(6):
            assert bob.progress() == f"{i + 1} / 6"
            _check_page(bob, hidden)
            iid = bob.item_id()
            order.append(iid)
            score = want["bob"][iid] if i else 2 - (want["bob"][iid] == 2)  # a wrong first answer
            with bob.page.expect_navigation():
                bob.page.click(f"button.score[value='{score}']")
        assert bob.page.url.endswith("/done")
        with bob.page.expect_navigation():
            bob.page.click("ol.overview li:first-child a")
        with bob.page.expect_navigation():
            bob.page.click(f"button.score[value='{want['bob'][order[0]]}']")
        bob.page.goto(f"{server}/r/{tokens['bob']}/done")
        with bob.page.expect_navigation():
            bob.page.click("#finish")
        seen_orders["bob"] = order
        errors += bob.errors
        requests += bob.requests
        bob.close()

    assert not errors, errors
    assert all(u.startswith(server + "/") for u in requests), [
        u for u in requests if not u.startswith(server)
    ]
    assert sorted(seen_orders["alice"]) == sorted(items) == sorted(seen_orders["bob"])
    assert seen_orders["alice"] != seen_orders["bob"]  # each rater has an order of their own

    con = sqlite3.connect(study_db)
    try:
        stored = con.execute(
            "SELECT rater, item, score FROM study_answers WHERE study = 'browser'"
        ).fetchall()
        finished = con.execute(
            "SELECT COUNT(*) FROM study_raters WHERE study = 'browser' AND finished IS NOT NULL"
        )
        assert finished.fetchone()[0] == 2
    finally:
        con.close()
    assert {(r, i): s for r, i, s in stored} == {(r, i): s for r in want for i, s in want[r].items()}

    out = tmp_path / "results.json"
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["study", "results", "--db", str(study_db), "--name", "browser", "--json"]) == 0
    out.write_text(buf.getvalue())
    res = json.loads(buf.getvalue())
    means = {g["group"]: g["mean"] for g in res["groups"]["method"]}
    assert means["lime3d"] == pytest.approx((2 + 1 + 1 + 2 + 2 + 0) / 6)
    assert means["rise3d"] == pytest.approx((-1 + 0 - 2 - 1 - 1 - 2) / 6)
    ids = sorted(items)
    m = np.array([[want[r][i] for i in ids] for r in ("alice", "bob")], dtype=float)
    assert res["alpha_ordinal"] == pytest.approx(_alpha_oracle(m, [-2, -1, 0, 1, 2]), abs=1e-9)
    # Exact agreement: per video, lime3d (2,2) (1,2) (1,0), rise3d (-1,-1) (0,-1) (-2,-2) -> 3 of 6.
    assert res["agreement"]["exact"] == pytest.approx(0.5)
    assert res["agreement"]["within_one"] == pytest.approx(1.0)
