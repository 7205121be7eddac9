"""evaluate / compare / ablate / report on tiny synthetic clips with a toy model (no zoo weights)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from removalx.experiments.cli import main
from removalx.experiments.stats import mean_ci
from tests.experiments.conftest import GRID, TINY

FAST_METRICS = [
    "--metrics",
    "deletion,insertion,spatial_pointing",
    "--metric-set",
    "deletion.steps=4",
    "--metric-set",
    "insertion.steps=4",
]


def rows(db: Path, sql: str) -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.fixture(scope="module")
def compare_db(tmp_path_factory, model_spec) -> Path:
    db = tmp_path_factory.mktemp("cmp") / "results.db"
    argv = [
        "compare",
        "--recipes",
        "lime3d,rise3d",
        "--model",
        model_spec,
        "--db",
        str(db),
        *TINY,
        *FAST_METRICS,
        *GRID,
    ]
    assert main(argv) == 0
    return db


def test_mean_ci_hand_value():
    s = mean_ci([1.0, 2.0, 3.0])
    # sd = 1, t(0.975, 2) = 4.3027 -> half width 4.3027 / sqrt(3) = 2.4842
    assert s["mean"] == 2.0 and s["sd"] == pytest.approx(1.0)
    assert s["ci_high"] - 2.0 == pytest.approx(2.4842, abs=1e-3)


def test_compare_stores_everything_and_reruns_for_free(compare_db, model_spec, tmp_path):
    expl = rows(compare_db, "SELECT method, item, n_forward FROM explanations")
    assert sorted({m for m, _, _ in expl}) == ["lime3d", "random", "rise3d"]
    assert len(expl) == 6
    assert len(rows(compare_db, "SELECT * FROM scores")) == 6 * 3
    out = tmp_path / "res.json"
    argv = [
        "compare",
        "--recipes",
        "lime3d,rise3d",
        "--model",
        model_spec,
        "--db",
        str(compare_db),
        *TINY,
        *FAST_METRICS,
        *GRID,
        "--export",
        str(out),
    ]
    assert main(argv) == 0
    assert len(rows(compare_db, "SELECT * FROM explanations")) == 6
    last = rows(compare_db, "SELECT computed, skipped FROM runs ORDER BY id DESC LIMIT 1")[0]
    assert last == (0, 6)
    data = json.loads(out.read_text())
    assert set(data["alpha"]) == {"deletion", "insertion"}
    assert {r["method"] for r in data["aggregate"]} == {"lime3d", "rise3d", "random"}
    assert len(data["scores"]) == 18
    csv_out = tmp_path / "res.csv"
    assert main([*argv[:-2], "--export", str(csv_out)]) == 0
    assert csv_out.read_text().count("\n") == 19


def test_ablate_reuses_one_sample_plan(tmp_path, model_spec):
    db = tmp_path / "abl.db"
    argv = [
        "ablate",
        "--recipe",
        "lime3d",
        "--vary",
        "removal.name=constant,blur,mean",
        "--model",
        model_spec,
        "--db",
        str(db),
        *TINY,
        "--metrics",
        "deletion",
        "--metric-set",
        "deletion.steps=4",
        *GRID,
        "--export",
        str(tmp_path / "abl.json"),
    ]
    assert main(argv) == 0
    expl = rows(db, "SELECT item, method, plan_digest, seed, recipe FROM explanations")
    assert len(expl) == 6
    by_item: dict[str, set] = {}
    for item, _, digest, seed, _recipe in expl:
        assert digest and seed == 0
        by_item.setdefault(item, set()).add(digest)
    assert all(len(d) == 1 for d in by_item.values())  # one plan per video across variants
    removals = {json.loads(r[4])["removal"]["name"] for r in expl}
    assert removals == {"constant", "blur", "mean"}
    paired = json.loads((tmp_path / "abl.json").read_text())["paired"]
    assert [(p["variant"], p["n"]) for p in paired] == [
        ("lime3d[removal.name=blur]", 2),
        ("lime3d[removal.name=mean]", 2),
    ]


def test_bad_input_exits_3(tmp_path, model_spec):
    db = str(tmp_path / "x.db")
    assert (
        main(["evaluate", "--recipe", "lime3d", "--model", model_spec, "--db", db, "--metrics", "nope"]) == 3
    )
    assert (
        main(
            ["ablate", "--recipe", "lime3d", "--vary", "removal.name=blur", "--model", model_spec, "--db", db]
        )
        == 3
    )
    assert main(["report", str(tmp_path / "missing.db")]) == 3


def test_killed_evaluate_resumes_without_loss_or_duplicates(tmp_path, model_spec):
    db = tmp_path / "resume.db"
    argv = [
        "evaluate",
        "--recipe",
        "occlusion3d",
        "--model",
        model_spec,
        "--db",
        str(db),
        "--n-videos",
        "4",
        "--frames",
        "4",
        "--size",
        "16",
        "--quiet",
        "--metrics",
        "deletion",
        "--metric-set",
        "deletion.steps=4",
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "removalx.experiments.cli", *argv, "--item-delay", "3"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        n = 0
        while time.monotonic() < deadline and proc.poll() is None:
            if db.exists():
                try:
                    n = rows(db, "SELECT COUNT(*) FROM scores")[0][0]
                except sqlite3.OperationalError:
                    n = 0
                if n >= 1:
                    break
            time.sleep(0.1)
        assert proc.poll() is None, "the run finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    first = rows(db, "SELECT item FROM explanations")
    assert 1 <= len(first) < 4
    assert main(argv) == 0
    expl = rows(db, "SELECT item, run_id FROM explanations ORDER BY id")
    items = [i for i, _ in expl]
    assert len(items) == 4 == len(set(items))  # nothing lost, nothing twice
    assert [i for i, r in expl if r == 1] == [i for (i,) in first]  # the killed run's work was kept
    scores = rows(db, "SELECT explanation_id, metric FROM scores")
    assert len(scores) == 4 == len(set(scores))
    computed, skipped = rows(db, "SELECT computed, skipped FROM runs ORDER BY id DESC LIMIT 1")[0]
    assert (computed, skipped) == (4 - len(first), len(first))


def _images(html: str) -> list[str]:
    return re.findall(r"<img[^>]*\ssrc=['\"]([^'\"]+)['\"]", html)


def test_report_is_self_contained(compare_db, tmp_path):
    out = tmp_path / "report.html"
    assert main(["report", str(compare_db), "--out", str(out)]) == 0
    html = out.read_text()
    assert "<table" in html and "lime3d" in html and "α" in html
    assert html.count("<svg") >= 3 + 2  # 3 bar plots + 2 curve plots
    imgs = _images(html)
    assert len(imgs) == 2  # one strip per video
    for src in imgs:
        assert src.startswith("data:image/gif;base64,") or (out.parent / src).exists()
    assert not re.search(r"(src|href)=['\"]?(https?:)?//", html), (
        "the report must not load anything from the network"
    )


def test_report_renders_in_headless_chromium(compare_db, tmp_path):
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip(
            "chromium is not on PATH (Debian: apt-get install -y chromium); the HTML checks above still ran"
        )
    out = tmp_path / "report.html"
    assert main(["report", str(compare_db), "--out", str(out)]) == 0
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--enable-logging=stderr",
        "--v=0",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=5000",
    ]
    dom = subprocess.run(
        [exe, *flags, "--dump-dom", out.as_uri()], capture_output=True, text=True, timeout=120
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    body = re.search(r"<body[^>]*>", dom.stdout)
    assert body, dom.stdout[:500]
    assert 'data-images="2"' in body.group(0) and 'data-broken-images="0"' in body.group(0), body.group(0)
    assert "<table" in dom.stdout
    console = [ln for ln in dom.stderr.splitlines() if "CONSOLE" in ln or "Uncaught" in ln]
    assert not console, console
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            exe,
            *flags[:-1],
            f"--user-data-dir={tmp_path / 'profile2'}",
            f"--screenshot={shot}",
            "--window-size=1200,1600",
            out.as_uri(),
        ],
        capture_output=True,
        timeout=120,
    )
    assert shot.exists() and shot.stat().st_size > 10_000


def test_evaluate_a_folder_of_videos_with_labels(tmp_path, model_spec):
    import torch

    from removalx.io import write_gif
    from removalx.testing import tiny_video

    folder = tmp_path / "videos"
    folder.mkdir()
    for i in range(2):
        frames = (tiny_video(frames=4, size=16, seed=i) * 255).round().to(torch.uint8)
        write_gif(frames, folder / f"clip{i}.gif", fps=4)
    (folder / "labels.csv").write_text("file,label\nclip0.gif,2\nclip1,3\n")
    (folder / "notes.txt").write_text("not a video")
    db = tmp_path / "dir.db"
    argv = [
        "evaluate",
        "--recipe",
        "lime3d",
        "--dataset",
        str(folder),
        "--model",
        model_spec,
        "--db",
        str(db),
        "--frames",
        "4",
        "--size",
        "16",
        "--quiet",
        "--metrics",
        "deletion,insertion",
        "--metric-set",
        "deletion.steps=4",
        "--metric-set",
        "insertion.steps=4",
        *GRID,
    ]
    assert main(argv) == 0
    videos = rows(db, "SELECT item, label FROM videos ORDER BY item")
    assert [(item.split("-")[0], label) for item, label in videos] == [("clip0.gif", 2), ("clip1.gif", 3)]
    assert len(rows(db, "SELECT * FROM explanations")) == 2
    assert len(rows(db, "SELECT * FROM scores")) == 2 * 2
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main([*argv[:4], str(empty), *argv[5:]]) == 3
