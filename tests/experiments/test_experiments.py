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

from removalx.cli.experiments import main
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


def test_bootstrap_ci_hand_values_and_range():
    import numpy as np

    from removalx.experiments.stats import bootstrap_ci

    # n = 2: resampled means are 0, 0.5, 1 with probabilities 1/4, 1/2, 1/4 -> 2.5% / 97.5% at 0 / 1
    s = bootstrap_ci([0.0, 1.0])
    assert (s["ci_low"], s["ci_high"], s["mean"], s["n"]) == (0.0, 1.0, 0.5, 2)
    assert bootstrap_ci([0.3, 0.3, 0.3])["ci_low"] == bootstrap_ci([0.3, 0.3, 0.3])["ci_high"] == 0.3
    assert np.isnan(bootstrap_ci([0.5])["ci_low"]) and bootstrap_ci([])["n"] == 0
    # AUCs near 1: the t interval runs past 1, the bootstrap one stays inside the data's range
    x = [1.0, 1.0, 1.0, 0.2, 1.0, 0.98]
    assert mean_ci(x)["ci_high"] > 1.0
    b = bootstrap_ci(x)
    assert 0.2 <= b["ci_low"] < b["mean"] < b["ci_high"] <= 1.0
    assert bootstrap_ci(x) == b  # same seed, same interval
    # many normal values: close to the t interval (the bootstrap is consistent)
    y = np.random.default_rng(1).normal(0.5, 0.1, 400)
    t, bb = mean_ci(y), bootstrap_ci(y)
    assert abs(bb["ci_low"] - t["ci_low"]) < 0.003 and abs(bb["ci_high"] - t["ci_high"]) < 0.003


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
    # (the substrate check adds deletion@blur5 and spatial_pointing: test_substrate_confound.py)
    assert [(p["variant"], p["n"]) for p in paired if p["metric"] == "deletion"] == [
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
        [sys.executable, "-m", "removalx.cli.experiments", *argv, "--item-delay", "3"],
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


@pytest.fixture(scope="module")
def report_html(compare_db, tmp_path_factory) -> Path:
    """The report of ``compare_db`` (written once; the tests below only read it)."""
    out = tmp_path_factory.mktemp("report") / "report.html"
    assert main(["report", str(compare_db), "--out", str(out)]) == 0
    return out


def test_report_is_self_contained(report_html):
    out = report_html
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


def _gif_frame(uri: str):
    """The first frame of a GIF data URI as ``uint8[H, W, 3]``."""
    import base64
    import io

    import numpy as np
    from PIL import Image

    data = base64.b64decode(uri.split(",", 1)[1])
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def _two_heatmap_db(path: Path) -> Path:
    """One grey 4x16x16 clip explained by two heat-map methods: ``a`` = column / 15, ``b`` = a / 2."""
    import torch

    from removalx.core.types import Attribution
    from removalx.experiments.store import Store

    vis = {"name": "heatmap", "top_fraction": None, "stretch": False, "alpha": 1.0}
    ramp = (torch.arange(16.0) / 15).expand(4, 16, 16).contiguous()
    store = Store(path)
    store.put_video("toy", "v0", torch.full((4, 16, 16, 3), 0.5), 0, {})
    for method, values in (("a", ramp), ("b", ramp / 2)):
        recipe = {"name": method, "visualization": vis}
        store.put_explanation(
            dataset="toy", item="v0", method=method, recipe_hash=method, model="m", seed=0,
            recipe=recipe, attribution=Attribution(values=values, target=0, meta={"recipe": recipe}), run_id=0,
        )  # fmt: skip
    store.close()
    return path


def test_report_strip_shares_one_scale_across_methods_of_one_kind(tmp_path):
    from removalx.display.colorbar import BAR_HEIGHT
    from removalx.experiments.report import BAR_MIN_WIDTH, GAP

    db = _two_heatmap_db(tmp_path / "toy.db")
    frames = {}
    for mode in ("shared", "per-method"):
        out = tmp_path / mode / "report.html"
        out.parent.mkdir()
        assert main(["report", str(db), "--out", str(out), "--gallery-scale", mode]) == 0
        (src,) = _images(out.read_text())
        frames[mode] = _gif_frame(src)
    tile = 16 * 8  # 16-pixel clips are upscaled 8x to 128 pixels

    def px(img, col_x0, column):  # centre of the attribution's pixel (row 4, column) in a panel
        return tuple(int(c) for c in img[4 * 8 + 4, col_x0 + column * 8 + 4])

    # shared: clip | a | b side by side, one colour bar under the overlays, none under the clip
    img = frames["shared"]
    # a wrapped label grows the bar
    assert img.shape[1] == 3 * tile + 2 * GAP and img.shape[0] >= tile + BAR_HEIGHT
    x_a, x_b = tile + GAP, 2 * (tile + GAP)
    assert px(img, x_a, 7) == px(img, x_b, 14)  # a = b = 7/15: one colour on the shared scale
    assert px(img, x_a, 15) != px(img, x_b, 15)  # a = 1, b = 0.5: different colours
    below = img[tile:]
    assert (below[:, :tile] == 255).all() and (below[:, x_a:] != 255).any(axis=2).sum() > 500

    # per-method: each map stretched to its own range (b's 7/15 is drawn like a's 14/15),
    # and every overlay has its own colour bar (columns padded to the bar's minimum width)
    img = frames["per-method"]
    w = BAR_MIN_WIDTH
    assert img.shape[1] == 3 * w + 2 * GAP and img.shape[0] >= tile + BAR_HEIGHT
    x_a, x_b = w + GAP, 2 * (w + GAP)
    assert px(img, x_a, 7) != px(img, x_b, 14)
    assert px(img, x_a, 14) == px(img, x_b, 14)
    for x0 in (x_a, x_b):
        assert (img[tile:, x0 : x0 + w] != 255).any(axis=2).sum() > 500
    assert (img[tile:, :w] == 255).all()


def test_report_overlays_of_different_kinds_each_have_a_colour_bar(report_html):
    from removalx.display.colorbar import BAR_HEIGHT

    page = report_html.read_text()
    assert "one colour scale" in page
    for src in _images(page):
        img = _gif_frame(src)
        assert img.shape[0] >= 16 * 8 + BAR_HEIGHT  # 16-pixel clip upscaled 8x, then the bars (labels wrap)
        # lime3d (posneg) and rise3d (heatmap) are not comparable: a bar under each overlay
        assert (img[16 * 8 :] != 255).any(axis=2).any(axis=0).sum() > 2 * 100


def test_report_rejects_an_unknown_gallery_scale(compare_db, tmp_path, capsys):
    from removalx.errors import ConfigError
    from removalx.experiments.report import write_report

    with pytest.raises(ConfigError, match="per-method"):
        write_report(compare_db, tmp_path / "r.html", gallery_scale="absolute")
    with pytest.raises(SystemExit) as exc:  # an argparse usage error
        main(["report", str(compare_db), "--out", str(tmp_path / "r.html"), "--gallery-scale", "x"])
    assert exc.value.code == 2 and "per-method" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()


def test_report_charts_and_tables_are_fit_for_a_paper(report_html):
    page = report_html.read_text()
    tmp_path = report_html.parent
    # matplotlib charts inline, text kept as text: orientation marks and axis labels are readable
    assert page.count("<svg") >= 5 and "<?xml" not in page
    assert "↑ higher is better" in page and "↓ lower is better" in page
    assert "fraction of the clip perturbed" in page and "score of the explained class" in page
    assert "95% bootstrap CI" in page
    # each chart also as PDF and PNG next to the report, linked from the page
    figs = sorted((tmp_path / "report_figures").iterdir())
    pdfs, pngs = [f for f in figs if f.suffix == ".pdf"], [f for f in figs if f.suffix == ".png"]
    assert len(pdfs) == len(pngs) == 5, figs
    assert all(f.read_bytes()[:5] == b"%PDF-" for f in pdfs)
    assert all(f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for f in pngs)
    for f in figs:
        assert f"report_figures/{f.name}" in page
    # AUC intervals (percentile bootstrap) stay inside [0, 1]; counts are integers
    cis = [(float(a), float(b)) for a, b in re.findall(r"\[(-?[0-9.]+), (-?[0-9.]+)\]", page)]
    assert cis and all(0.0 <= a <= b <= 1.0 for a, b in cis), cis
    for row in re.findall(r"<tr><td>(?:lime3d|rise3d|random)</td>.*?</tr>", page):
        cells = re.findall(r"<td[^>]*>([^<]*)</td>", row)
        assert re.fullmatch(r"[0-9]+", cells[1]) and re.fullmatch(r"[0-9]+", cells[-1]), cells
    # every alpha comes with a line saying what it means
    assert (
        page.count("<td class='meaning'>")
        == len(re.findall(r"<tr><td>(?:deletion|insertion)</td><td>", page))
        >= 1
    )


def test_report_without_matplotlib_names_the_extra(compare_db, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # "import matplotlib" raises ImportError
    out = tmp_path / "r" / "report.html"
    out.parent.mkdir()
    assert main(["report", str(compare_db), "--out", str(out)]) == 3
    err = capsys.readouterr().err
    assert "removalx[report]" in err and "Traceback" not in err
    assert list(out.parent.iterdir()) == []  # nothing written


def test_a_new_report_section_is_one_list_entry(compare_db, tmp_path, monkeypatch):
    from removalx.experiments import report
    from removalx.experiments.figures import new_figure

    def study_section(ctx: report.ReportContext) -> str:
        fig = new_figure()
        fig.add_subplot().plot([0, 1], [1, 0])
        return "<h2>User study</h2>" + ctx.figures.add(fig, "study", "A chart of a new section.")

    monkeypatch.setattr(report, "SECTIONS", [study_section])  # the built-in sections are tested above
    out = tmp_path / "report.html"
    assert main(["report", str(compare_db), "--out", str(out)]) == 0
    page = out.read_text()
    assert "<h2>User study</h2>" in page and "A chart of a new section." in page
    assert (tmp_path / "report_figures" / "study.pdf").exists()


def test_report_renders_in_headless_chromium(report_html, tmp_path):
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip(
            "chromium is not on PATH (Debian: apt-get install -y chromium); the HTML checks above still ran"
        )
    out = report_html
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
    svgs = re.search(r'data-svgs="([0-9]+)"', body.group(0))
    assert svgs and int(svgs.group(1)) >= 5, body.group(0)
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

    from removalx.testing import tiny_video
    from removalx.video.io import write_gif

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
