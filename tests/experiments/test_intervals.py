"""Issue 27 §2.6: one interval everywhere: SciPy's BCa bootstrap, clipped, labelled, flagged at small n."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from removalx.experiments import stats as rstats
from removalx.experiments.stats import (
    BOOTSTRAP_RESAMPLES,
    MIN_TRUSTED_N,
    bootstrap_ci,
    ci_label,
    format_interval,
    score_range,
)


def _scipy(x, method="BCa", seed=0):
    """The oracle: scipy.stats.bootstrap called directly with the same seed and resamples."""
    return stats.bootstrap(
        (np.asarray(x, dtype=float),),
        np.mean,
        n_resamples=BOOTSTRAP_RESAMPLES,
        batch=250,
        method=method,
        rng=np.random.default_rng(seed),
    ).confidence_interval


@pytest.mark.parametrize("seed", [0, 7])
def test_interval_is_scipys_bca_with_the_same_seed(seed):
    x = np.random.default_rng(123).beta(5, 1, size=25)  # AUC-like scores, skewed towards 1
    got = bootstrap_ci(x, seed=seed, value_range=(0.0, 1.0))
    ci = _scipy(x, seed=seed)
    assert (got["ci_low"], got["ci_high"]) == (
        pytest.approx(ci.low, abs=1e-12),
        pytest.approx(ci.high, abs=1e-12),
    )
    assert got["ci_method"] == "bca" and got["ci_label"] == "95% BCa bootstrap CI"
    assert got["mean"] == pytest.approx(x.mean()) and got["n"] == 25 and not got["small_n"]
    # BCa is not the percentile interval on skewed data (the oracle tells them apart)
    pct = _scipy(x, "percentile", seed)
    assert abs(pct.low - ci.low) > 1e-4


def test_small_samples_stay_inside_the_scale_and_are_flagged():
    # the cases: n = 2 study scores (Student's t gave [-25.41, 25.41] on -2..+2), n = 4 AUCs
    s = bootstrap_ci([-2.0, 2.0], value_range=(-2.0, 2.0))
    assert -2.0 <= s["ci_low"] <= s["ci_high"] <= 2.0 and s["small_n"]
    a = bootstrap_ci([1.0, 1.0, 1.0, 0.6], value_range=(0.0, 1.0))
    assert a["ci_low"] < a["ci_high"] <= 1.0 and a["small_n"]  # not collapsed to [1, 1]
    assert format_interval(a).endswith("(n < 10: too small to trust)")
    assert not bootstrap_ci(np.linspace(0, 1, MIN_TRUSTED_N))["small_n"]
    assert bootstrap_ci(np.linspace(0, 1, MIN_TRUSTED_N - 1))["small_n"]


def test_clipping_to_the_metric_range():
    x = [0.2, 0.4, 0.9, 0.95]
    free = bootstrap_ci(x)
    clipped = bootstrap_ci(x, value_range=(0.5, 0.7))  # a range narrower than the data: hand-checkable
    assert free["ci_low"] < 0.5 and free["ci_high"] > 0.7
    assert (clipped["ci_low"], clipped["ci_high"]) == (0.5, 0.7) and clipped["value_range"] == [0.5, 0.7]


def test_constant_data_is_the_point_labelled_and_too_few_is_undefined():
    c = bootstrap_ci([0.3, 0.3, 0.3])
    assert (c["ci_low"], c["ci_high"], c["ci_method"]) == (0.3, 0.3, "point")
    assert "every value equal" in c["ci_label"]
    with pytest.warns(Warning):  # why: SciPy's BCa is undefined there
        assert math.isnan(_scipy([0.3, 0.3, 0.3]).low)
    one = bootstrap_ci([0.5])
    assert math.isnan(one["ci_low"]) and one["ci_method"] == "none" and format_interval(one) == "-"
    assert bootstrap_ci([])["n"] == 0


def test_percentile_stands_in_where_bca_is_undefined(monkeypatch):
    monkeypatch.setattr(rstats, "_bca", lambda *a: (math.nan, math.nan))
    x = [0.1, 0.5, 0.7, 0.9, 0.2]
    got = bootstrap_ci(x)
    ci = _scipy(x, "percentile")
    assert got["ci_method"] == "percentile" and (got["ci_low"], got["ci_high"]) == (
        pytest.approx(ci.low),
        pytest.approx(ci.high),
    )
    assert ci_label("percentile").startswith("95% percentile bootstrap CI")


def test_score_range_of_the_built_in_metrics():
    assert score_range({"curve": {}, "settings": {"behavior": "probability"}}) == (0.0, 1.0)
    assert score_range({"curve": {}, "settings": {"behavior": "logit"}}) is None
    assert score_range({"hits": 3}) == (0.0, 1.0) and score_range({"frame_scores": []}) == (0.0, 1.0)
    assert score_range({"percent": {}}) == (0.0, 100.0)
    assert score_range({"value_range": [-1, 1]}) == (-1.0, 1.0)


def test_cli_table_prints_the_interval_not_a_half_width(capsys):
    from removalx.cli.experiments import _print_table

    x = [0.2, 0.9, 0.95, 1.0, 0.99]
    s = {**bootstrap_ci(x, value_range=(0.0, 1.0)), "higher_is_better": True}
    row = {"method": "m", "n_videos": 5, "deletion": s, "time_s": 1.0, "n_forward": 3, "n_backward": 0}
    _print_table([row], ["deletion"])
    out = capsys.readouterr().out
    assert "±" not in out and f"[{s['ci_low']:.3f}, {s['ci_high']:.3f}]*" in out
    assert "95% BCa bootstrap CI" in out and "n < 10: too small to trust (n = 5 videos)" in out


def test_aggregate_passes_each_metrics_range_in():
    from removalx.experiments.runner import aggregate

    vals = [0.2, 0.4, 0.6, 0.8, 0.9, 0.3]
    details = {"value_range": [0.0, 0.5], "higher_is_better": True}  # declared: clipping must show

    class Store:
        def scores(self):
            return [
                {
                    "dataset": "d",
                    "item": f"v{i}",
                    "method": "m",
                    "metric": "x",
                    "value": v,
                    "details": details,
                }
                for i, v in enumerate(vals)
            ]

        def explanations(self, methods=None):
            return [
                {"dataset": "d", "item": f"v{i}", "method": "m", "time_s": 1.0, "n_forward": 1}
                for i in range(6)
            ]

    (row,) = aggregate(Store(), ["m"], ["x"])
    s = row["x"]
    free = bootstrap_ci(vals)
    assert free["ci_high"] > 0.5 and s["ci_high"] == 0.5 and s["ci_low"] == pytest.approx(free["ci_low"])
    assert s["small_n"] and s["ci_label"] == "95% BCa bootstrap CI" and s["value_range"] == [0.0, 0.5]
