"""The substrate confound of ``ablate`` over the removal (issue 24 §1): detection and extra scoring."""

from __future__ import annotations

import pytest

from removalx.core.recipe import load_recipe
from removalx.experiments.runner import MetricSpec
from removalx.experiments.substrate_check import (
    Fill,
    metric_fill,
    plan_substrate_check,
    removal_fill,
)


def _removal(**over):
    return load_recipe("lime3d", overrides={f"removal.{k}": v for k, v in over.items()}).stage("removal")


def _variants(*configs):
    return [(f"v{i}", _removal(**c)) for i, c in enumerate(configs)]


ISSUE = ({"name": "constant"}, {"name": "blur"}, {"name": "mean"}, {"name": "noise"})


def test_fill_equality_by_hand():
    black = metric_fill(MetricSpec("deletion", "deletion"))
    assert black == ("fill", Fill("colour", (0.0,)))
    assert black[1].same(removal_fill(_removal(name="constant")))
    assert black[1].same(removal_fill(_removal(name="constant", value=[0.0, 0.0, 0.0])))
    gray = metric_fill(MetricSpec("d", "deletion", {"fill": "gray"}))[1]
    assert gray.same(removal_fill(_removal(name="constant", value=0.5)))
    assert not gray.same(black[1])
    blur = metric_fill(MetricSpec("d", "deletion", {"fill": "blur"}))[1]
    assert blur.same(removal_fill(_removal(name="blur")))  # both sigma 10
    assert not blur.same(removal_fill(_removal(name="blur", sigma=5)))
    clip_mean = metric_fill(MetricSpec("d", "deletion", {"fill": "mean"}))[1]
    assert not clip_mean.same(removal_fill(_removal(name="mean")))  # region mean != clip mean
    assert not black[1].same(removal_fill(_removal(name="noise")))
    step = metric_fill(MetricSpec("d", "deletion", {"preset": "step", "fill_value": [0.4, 0.4, 0.4]}))[1]
    assert step.same(removal_fill(_removal(name="constant", value=[0.4, 0.4, 0.4])))
    assert metric_fill(MetricSpec("c", "completeness"))[0] == "baseline"
    assert metric_fill(MetricSpec("p", "spatial_pointing")) is None


def test_the_issue_run_gets_blur5_copies_and_ground_truth():
    specs = [MetricSpec("deletion", "deletion", {"steps": 8}), MetricSpec("insertion", "insertion")]
    plan = plan_substrate_check(_variants(*ISSUE), specs, has_ground_truth=True)
    # black is the constant variant's fill and blur 10 the blur variant's: blur 5 is the first free one
    assert plan.extra == [
        ("deletion@blur5", "deletion", {"steps": 8, "fill": "blur", "blur_sigma": 5.0}),
        ("insertion@blur5", "insertion", {"fill": "blur", "blur_sigma": 5.0}),
        ("spatial_pointing", "spatial_pointing", {}),
    ]
    assert len(plan.warnings) == 3
    assert "substrate confound: deletion's substrate, black, is the fill of variant v0" in plan.warnings[0]
    assert "deletion@blur5" in plan.warnings[0] and "no variant uses" in plan.warnings[0]


def test_no_ground_truth_metric_without_ground_truth_or_when_the_run_has_one():
    specs = [MetricSpec("deletion", "deletion")]
    plan = plan_substrate_check(_variants(*ISSUE), specs, has_ground_truth=False)
    assert [e[0] for e in plan.extra] == ["deletion@blur5"]
    specs.append(MetricSpec("sp", "spatial_pointing"))
    plan = plan_substrate_check(_variants(*ISSUE), specs, has_ground_truth=True)
    assert [e[0] for e in plan.extra] == ["deletion@blur5"]


def test_without_a_blur_variant_the_copy_is_blur10():
    plan = plan_substrate_check(
        _variants({"name": "constant"}, {"name": "mean"}),
        [MetricSpec("deletion", "deletion")],
        has_ground_truth=False,
    )
    assert plan.extra == [("deletion@blur10", "deletion", {"fill": "blur", "blur_sigma": 10.0})]


def test_a_substrate_no_variant_uses_still_gets_a_copy_with_a_softer_warning():
    plan = plan_substrate_check(
        _variants({"name": "noise"}, {"name": "mean"}),
        [MetricSpec("deletion", "deletion")],
        has_ground_truth=False,
    )
    assert [e[0] for e in plan.extra] == ["deletion@blur10"]
    assert "confound" not in plan.warnings[0] and "decides part of the ranking" in plan.warnings[0]


def test_when_every_candidate_is_a_variant_the_note_says_so():
    blurs = [{"name": "blur", "sigma": s} for s in (10, 5, 20, 3, 40)]
    variants = _variants(*blurs, {"name": "constant", "value": 0.5}, {"name": "constant"})
    plan = plan_substrate_check(
        variants, [MetricSpec("irof", "irof")], has_ground_truth=False
    )  # irof: clip mean
    assert plan.extra[0][0] == "irof@blur10"
    assert "every candidate substrate is some variant's fill" in plan.warnings[0]


def test_no_check_when_the_removal_does_not_vary():
    same = _variants({"name": "constant"}, {"name": "constant"})
    assert plan_substrate_check(same, [MetricSpec("deletion", "deletion")], has_ground_truth=True).extra == []
    explainer = [("a", None), ("b", None)]
    assert (
        plan_substrate_check(explainer, [MetricSpec("deletion", "deletion")], has_ground_truth=True).extra
        == []
    )
    blurs = _variants({"name": "blur", "sigma": 3}, {"name": "blur", "sigma": 7})
    assert (
        plan_substrate_check(blurs, [MetricSpec("p", "spatial_pointing")], has_ground_truth=True).extra == []
    )


def test_a_copy_keeps_the_metrics_settings_and_drops_its_colour():
    spec = MetricSpec("d", "deletion", {"preset": "step", "fill_value": [0.4, 0.4, 0.4], "steps": 4})
    plan = plan_substrate_check(_variants(*ISSUE), [spec], has_ground_truth=False)
    assert plan.extra == [
        ("d@blur5", "deletion", {"preset": "step", "steps": 4, "fill": "blur", "blur_sigma": 5.0})
    ]
    comp = plan_substrate_check(_variants(*ISSUE), [MetricSpec("c", "completeness")], has_ground_truth=False)
    assert comp.extra == [("c@blur5", "completeness", {"baseline": "blur", "blur_sigma": 5.0})]


FAST = {
    "n_videos": 2,
    "frames": 8,
    "size": 32,
    "progress": False,
    "metrics": "deletion",
    "metric_set": ["deletion.steps=4"],
    "overrides": ["segmentation.name=grid3d", "segmentation.cells=[1,2,2]", "sample_selection.n_samples=8"],
}


def test_python_journey_scores_both_substrates(tmp_path):
    pytest.importorskip("pandas")
    from removalx.experiments.api import ablate

    variants = [{"name": "black", "removal": {"name": "constant"}}, {"name": "blur5", "removal": "blur"}]
    res = ablate("lime3d", db=tmp_path / "r.db", variants=variants, **FAST)
    assert res.methods == ["black", "blur5"]
    assert res.metrics == ["deletion", "deletion@blur5", "spatial_pointing"]
    assert set(res.summary["metric"]) == set(res.metrics)
    assert set(res.paired["metric"]) == set(res.metrics)
    assert any("substrate confound: deletion's substrate, black, is" in n for n in res.notes)
    copy = res.scores[res.scores["metric"] == "deletion@blur5"]
    assert len(copy) == 4
    plain = res.scores[res.scores["metric"] == "deletion"].set_index(["method", "item"])["value"]
    other = copy.set_index(["method", "item"])["value"]
    assert (plain - other).abs().max() > 0  # a different substrate, a different curve

    pytest.importorskip("matplotlib")
    from removalx.experiments.report import write_report

    page = write_report(tmp_path / "r.db", tmp_path / "report.html")
    text = page.read_text()
    assert "<p class='warning'>warning: substrate confound: deletion&#x27;s substrate, black, is" in text

    off = ablate("lime3d", db=tmp_path / "r.db", variants=variants, substrate_check=False, **FAST)
    assert off.metrics == ["deletion"] and not any("substrate" in n for n in off.notes)
    assert off.counts.scored == 0  # everything reused from the first run


def test_cli_journey_prints_the_warning_and_stores_the_copy(tmp_path, capsys):
    from removalx.cli.main import main
    from removalx.experiments.store import Store

    db = tmp_path / "r.db"
    argv = [
        "ablate",
        "-r",
        "lime3d",
        "--vary",
        "removal=black:{name: constant},gray:{name: constant, value: 0.5}",
    ]
    argv += [
        "--db",
        str(db),
        "--n-videos",
        "2",
        "--frames",
        "8",
        "--size",
        "32",
        "-q",
        "--metrics",
        "deletion",
    ]
    argv += ["--metric-set", "deletion.steps=4", "--dataset", "zoo:synthetic"]
    for over in FAST["overrides"]:
        argv += ["--set", over]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "warning: substrate confound: deletion's substrate, black, is the fill of variant black" in printed
    assert "deletion@blur10" in printed and "gray vs black on deletion@blur10" in printed
    store = Store(db, read_only=True)
    try:
        scores = store.scores()
    finally:
        store.close()
    copy = [s for s in scores if s["metric"] == "deletion@blur10"]
    assert len(copy) == 4
    assert all(s["details"]["settings"]["fill"] == "blur" for s in copy)
    assert all(s["details"]["settings"]["blur_sigma"] == 10.0 for s in copy)
