"""Report and command line of many comparisons: corrected tables, paired-difference charts,
figure names, display names, and experiments that keep every metric they stored."""

from __future__ import annotations

import json
import re
import sqlite3

import pytest

from removalx.cli.main import main
from removalx.errors import ConfigError
from removalx.experiments.figures import figure_name, method_label, paired_diffs, wrap_label
from removalx.experiments.report import write_report
from removalx.experiments.store import Store
from tests.experiments.conftest import GRID, TINY

pytest.importorskip("matplotlib")

LONG = "lime3d[removal.name=constant]"


def _ablate(db, model_spec, metrics: str, *extra: str) -> list[str]:
    argv = ["ablate", "--recipe", "lime3d", "--vary", "removal.name=constant,blur,mean"]
    argv += ["--model", model_spec, "--db", str(db), *TINY, "--metrics", metrics, *GRID]
    argv += ["--no-substrate-check"]  # only the metrics named here (fewer charts, a faster report)
    for m in metrics.split(","):
        argv += ["--metric-set", f"{m}.steps=4"]
    return argv + list(extra)


@pytest.fixture(scope="module")
def ablated(tmp_path_factory, model_spec):
    """An ablate run with deletion, then a rerun into the same database with insertion only."""
    d = tmp_path_factory.mktemp("ablate")
    db = d / "abl.db"
    assert main(_ablate(db, model_spec, "deletion")) == 0
    assert main(_ablate(db, model_spec, "insertion", "--correction", "bh")) == 0
    return db


# -- figures ----------------------------------------------------------------------------------------
def test_figure_names_say_experiment_metric_and_kind():
    long = "ablate: " + ", ".join(f"lime3d[removal.name={v}]" for v in ("constant", "blur", "mean", "noise"))
    name = figure_name(long, "spatial_pointing", "paired-diffs")
    assert name.endswith("-spatial_pointing-paired-diffs") and name.startswith("ablate-lime3d")
    assert len(name) < 90
    other = figure_name(long.replace("noise", "inpaint"), "spatial_pointing", "paired-diffs")
    assert other != name  # cut names of different experiments never collide (hash)
    assert figure_name("evaluate: rise3d", "deletion", "means") == "evaluate-rise3d-deletion-means"


def test_labels_wrap_or_use_display_names():
    label = "lime3d[removal.name=constant,removal.sigma=2]"
    lines = wrap_label(label).split("\n")
    assert 1 < len(lines) <= 3 and all(len(line) <= 24 for line in lines)
    assert "".join(lines) == label  # wrapped, nothing cut
    assert wrap_label("x" * 200).endswith("…") and wrap_label("short") == "short"
    assert method_label(LONG, {LONG: "constant fill"}) == "constant fill"


def test_paired_difference_chart_draws_each_variant_with_its_interval():
    rows = [
        {"variant": "lime3d[removal.name=blur]", "baseline": LONG, "metric": "deletion", "diff_mean": 0.02,
         "diff_ci_low": 0.01, "diff_ci_high": 0.04, "p_ttest": 0.001, "p_ttest_adj": 0.002,
         "correction": "holm"},
        {"variant": "lime3d[removal.name=mean]", "baseline": LONG, "metric": "deletion", "diff_mean": -0.01,
         "diff_ci_low": -0.03, "diff_ci_high": 0.005, "p_ttest": 0.2, "p_ttest_adj": 0.2,
         "correction": "holm"},
    ]  # fmt: skip
    fig = paired_diffs("deletion", rows, {"lime3d[removal.name=mean]": "mean fill"}, False)
    ax = fig.axes[0]
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    assert ticks[1] == "mean fill" and "blur" in ticks[0]
    texts = [t.get_text() for t in ax.texts]
    assert texts == ["p adj. 0.002", "p adj. 0.200"]
    lines = ax.lines
    assert any(list(line.get_xdata()) == [0, 0] for line in lines)  # the line of no difference
    assert paired_diffs("insertion", rows) is None


# -- store: a rerun adds metrics -----------------------------------------------------------------
def test_a_rerun_with_other_metrics_adds_to_the_experiment(tmp_path):
    store = Store(tmp_path / "x.db")
    try:
        assert store.put_experiment("e", "ablate", ["a", "b"], ["deletion", "pointing"], "d", {}) == []
        kept = store.put_experiment("e", "ablate", ["a", "b"], ["insertion", "deletion"], "d", {"x": 1})
        assert kept == ["pointing"]
        (exp,) = store.experiments()
        assert exp["metrics"] == ["deletion", "pointing", "insertion"] and exp["args"] == {"x": 1}
        with store.transaction():  # inside a caller's transaction too
            store.put_experiment("e", "ablate", ["a"], ["alpha"], "d", {})
        assert store.experiments()[0]["metrics"][-1] == "alpha"
    finally:
        store.close()


def test_ablate_rerun_keeps_both_metrics_and_the_cli_prints_corrected_tests(ablated, model_spec, capsys):
    con = sqlite3.connect(ablated)
    (metrics,) = con.execute("SELECT metrics FROM experiments").fetchone()
    con.close()
    listed = json.loads(metrics)  # other checks of a run may add metrics of their own
    assert "deletion" in listed and "insertion" in listed
    assert listed.index("deletion") < listed.index("insertion")  # the first run's metrics first
    assert main(_ablate(ablated, model_spec, "deletion")) == 0  # all reused
    out, err = capsys.readouterr()
    assert "also keeps the metrics of its earlier runs: insertion" in err
    n_rows = sum(1 for line in out.splitlines() if " vs lime3d[removal.name=constant] on " in line)
    family = re.search(r"p corrected: Holm step-down \(family-wise error rate\) over (\d+) tests", out)
    assert family and 2 <= int(family.group(1)) <= n_rows  # tests without a p are not in the family
    assert "(adj " in out and "d_z" in out and "95% BCa bootstrap" in out
    tests = [line for line in out.splitlines() if "p_t=" in line]
    assert tests and "n = 2 < 10" in out
    assert not any(re.search(r"p_\w+=0\.000\b|adj 0\.000\b", line) for line in tests)


# -- the report -------------------------------------------------------------------------------------
def test_report_shows_raw_and_adjusted_p_the_correction_and_paired_charts(ablated, tmp_path):
    out = write_report(ablated, tmp_path / "r.html", max_videos=0, correction="bh")
    page = out.read_text()
    family = re.search(r"p-value correction: Benjamini-Hochberg step-up [^<]* over (\d+) tests", page)
    assert family and int(family.group(1)) >= 4  # deletion and insertion of two variants, at least
    assert "<th>p t adj.</th>" in page and "<th>p Wilcoxon adj.</th>" in page
    assert "d_z [95% CI]" in page and "Paired differences (95% CI)" in page
    assert "Wilcoxon cannot reach p &lt; 0.05" in page  # n = 2 videos
    names = sorted(p.name for p in (tmp_path / "r_figures").iterdir())
    for metric in ("deletion", "insertion"):
        for kind in ("means", "paired-diffs", "curves"):
            assert any(n.endswith(f"-{metric}-{kind}.png") for n in names), (metric, kind)
            assert any(n.endswith(f"-{metric}-{kind}.pdf") for n in names), (metric, kind)
    assert all(n.startswith("ablate-lime3d-removal.name-constant") for n in names)


def test_report_rejects_an_unknown_correction(ablated, tmp_path, capsys):
    with pytest.raises(SystemExit):  # argparse: invalid choice
        main(["report", str(ablated), "--out", str(tmp_path / "r.html"), "--correction", "bonf"])
    assert "invalid choice: 'bonf'" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="holm, bh, none"):
        write_report(ablated, tmp_path / "r.html", correction="bonf")


def test_report_of_an_old_database_names_stored_metrics_its_list_lost(ablated, tmp_path):
    old = tmp_path / "old.db"
    old.write_bytes(ablated.read_bytes())
    con = sqlite3.connect(old)
    con.execute("UPDATE experiments SET metrics = ?", (json.dumps(["insertion"]),))  # the old behaviour
    con.commit()
    con.close()
    page = write_report(old, tmp_path / "r.html", max_videos=0).read_text()
    assert "Also shown: scores stored for these methods" in page and "deletion (6 scores)" in page
    assert "<th>deletion" in page


def test_report_uses_display_names(ablated, tmp_path):
    db = tmp_path / "named.db"
    db.write_bytes(ablated.read_bytes())
    con = sqlite3.connect(db)
    for rid, recipe in con.execute("SELECT id, recipe FROM explanations").fetchall():
        r = json.loads(recipe)
        r["display_name"] = f"{r['removal']['name']} fill"
        con.execute("UPDATE explanations SET recipe = ? WHERE id = ?", (json.dumps(r), rid))
    con.commit()
    con.close()
    page = write_report(db, tmp_path / "r.html", max_videos=0).read_text()
    assert "Paired comparisons against constant fill" in page
    assert f"<td title='{LONG}'>constant fill</td>" in page
    assert ">blur fill<" in page  # the charts' labels are SVG text
