"""Statistics of many comparisons: corrections, p formatting, effect sizes and small-n notes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from removalx.errors import ConfigError
from removalx.experiments.multiplicity import (
    adjust_pvalues,
    check_correction,
    correct_table,
    correction_label,
    family_notes,
    format_p,
    row_notes,
)
from removalx.experiments.stats import min_p_wilcoxon, paired_test

# -- corrections ----------------------------------------------------------------------------------
#: Four p-values and their adjustments, computed by hand from the definitions:
#: sorted 0.005, 0.01, 0.03, 0.04 (m = 4).
#: Holm: 4*0.005 = 0.02, 3*0.01 = 0.03, 2*0.03 = 0.06, 1*0.04 = 0.04 -> running max 0.02 0.03 0.06 0.06.
#: BH: 4*0.005/1 = 0.02, 4*0.01/2 = 0.02, 4*0.03/3 = 0.04, 4*0.04/4 = 0.04 -> running min from the top.
RAW = [0.01, 0.04, 0.03, 0.005]
HOLM = [0.03, 0.06, 0.06, 0.02]
BH = [0.02, 0.04, 0.04, 0.02]


def test_holm_and_bh_match_a_hand_computed_table():
    np.testing.assert_allclose(adjust_pvalues(RAW, "holm"), HOLM)
    np.testing.assert_allclose(adjust_pvalues(RAW, "bh"), BH)
    np.testing.assert_allclose(adjust_pvalues(RAW, "none"), RAW)


def test_undefined_p_values_are_left_out_of_the_family():
    # m = 2, not 3: Holm multiplies the smaller by 2 and keeps the larger
    out = adjust_pvalues([0.01, math.nan, 0.04], "holm")
    assert out[0] == pytest.approx(0.02) and math.isnan(out[1]) and out[2] == pytest.approx(0.04)
    assert np.isnan(adjust_pvalues([math.nan, math.nan], "bh")).all()
    assert adjust_pvalues([], "holm").size == 0


def test_adjusted_values_are_capped_at_one_and_never_below_the_raw_p():
    p = np.random.default_rng(3).uniform(0, 1, 40)
    for method in ("holm", "bh"):
        adj = adjust_pvalues(p, method)
        assert (adj >= p - 1e-15).all() and (adj <= 1).all()


@pytest.mark.parametrize("m", [1, 2, 7, 30])
def test_bh_matches_scipy_false_discovery_control(m):
    p = np.random.default_rng(m).uniform(0, 0.2, m) ** 2
    np.testing.assert_allclose(adjust_pvalues(p, "bh"), stats.false_discovery_control(p, method="bh"))


def _holm_rejects(p: np.ndarray, alpha: float) -> np.ndarray:
    """Holm's sequential procedure as the paper states it: reject p_(i) while p_(i) <= alpha/(m-i+1)."""
    order = np.argsort(p, kind="stable")
    reject = np.zeros(p.size, dtype=bool)
    for i, k in enumerate(order):
        if p[k] * (p.size - i) > alpha:  # p_(i) > alpha / (m - i + 1), without rounding the division
            break
        reject[k] = True
    return reject


def test_holm_adjusted_p_rejects_exactly_what_the_sequential_procedure_rejects():
    rng = np.random.default_rng(0)
    for trial in range(20):
        p = rng.uniform(0, 0.1, 1 + trial % 9)
        adj = adjust_pvalues(p, "holm")
        for alpha in (0.001, 0.01, 0.025, 0.05, 0.1, *adj.tolist()):
            np.testing.assert_array_equal(adj <= alpha, _holm_rejects(p, alpha))


def test_statsmodels_agrees_when_installed():
    multitest = pytest.importorskip("statsmodels.stats.multitest")
    p = np.random.default_rng(1).uniform(0, 0.3, 12)
    for ours, theirs in (("holm", "holm"), ("bh", "fdr_bh")):
        np.testing.assert_allclose(adjust_pvalues(p, ours), multitest.multipletests(p, method=theirs)[1])


def test_an_unknown_correction_is_a_config_error_naming_the_choices():
    with pytest.raises(ConfigError, match="holm, bh, none"):
        check_correction("bonferroni" * 20)
    assert "Holm" in correction_label("holm", 16) and "16 tests" in correction_label("holm", 16)
    assert "Benjamini" in correction_label("bh") and "raw" in correction_label("none", 3)


# -- p formatting -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("p", "text"),
    [
        (0.0, "<1e-4"),
        (3e-9, "<1e-4"),
        (1e-4, "0.0001"),
        (2.3e-4, "0.00023"),
        (0.0049, "0.0049"),
        (0.0123, "0.012"),
        (0.049, "0.049"),
        (0.31, "0.310"),
        (1.0, "1"),
        (math.nan, "–"),
        (None, "–"),
    ],
)
def test_format_p(p, text):
    assert format_p(p) == text


def test_format_p_never_prints_zero():
    for p in np.logspace(-12, 0, 200):
        assert not set(format_p(float(p))) <= set("0.")
        assert format_p(float(p)) != "0.000"


# -- paired tests and effect sizes ---------------------------------------------------------------
def test_paired_tests_match_scipy_and_d_z_a_hand_value():
    a = np.array([0.2, 0.5, 0.1, 0.4])
    b = a + np.array([1.0, 2.0, 3.0, 6.0])  # differences 1, 2, 3, 6: mean 3, sd sqrt(14/3)
    out = paired_test(a, b)
    assert out["diff_mean"] == pytest.approx(3.0)
    assert out["dz"] == pytest.approx(3.0 / math.sqrt(14 / 3))
    t = stats.ttest_rel(b, a)
    assert out["p_ttest"] == pytest.approx(t.pvalue)
    assert out["dz"] * math.sqrt(4) == pytest.approx(t.statistic)  # t = d_z sqrt(n)
    assert out["p_wilcoxon"] == pytest.approx(stats.wilcoxon(b - a).pvalue)


def test_effect_intervals_are_the_bca_bootstrap_seeded_and_contain_the_estimate():
    rng = np.random.default_rng(5)
    a = rng.uniform(0, 1, 30)
    b = np.clip(a + 0.05 + 0.1 * rng.standard_normal(30), 0, 1)
    out = paired_test(a, b, value_range=(0, 1), seed=7)
    ref = stats.bootstrap(
        (b - a,), np.mean, n_resamples=2000, batch=250, method="BCa", rng=np.random.default_rng(7)
    )
    assert out["diff_ci_low"] == pytest.approx(ref.confidence_interval.low)
    assert out["diff_ci_high"] == pytest.approx(ref.confidence_interval.high)
    assert out["diff_ci_label"] == "95% BCa bootstrap CI" and out["dz_ci_label"] == "95% BCa bootstrap CI"
    assert out["dz_ci_low"] < out["dz"] < out["dz_ci_high"]
    assert out["diff_value_range"] == [-1.0, 1.0]
    again = paired_test(a, b, value_range=(0, 1), seed=7)
    assert again["dz_ci_low"] == out["dz_ci_low"] and again["diff_ci_high"] == out["diff_ci_high"]


def test_differences_without_spread_have_no_standardised_effect():
    out = paired_test([1.0, 2.0, 3.0], [1.5, 2.5, 3.5])
    assert out["diff_mean"] == pytest.approx(0.5) and math.isnan(out["dz"])
    assert out["dz_ci_method"] == "no_spread" and "no spread" in out["dz_ci_label"]
    same = paired_test([1.0, 2.0], [1.0, 2.0])
    assert math.isnan(same["p_ttest"]) and math.isnan(same["p_wilcoxon"]) and same["n_nonzero"] == 0


@pytest.mark.parametrize("n", [2, 3, 4, 5, 6, 8])
def test_smallest_wilcoxon_p_is_what_scipy_gives_when_every_difference_agrees(n):
    assert min_p_wilcoxon(n) == pytest.approx(stats.wilcoxon(np.arange(1.0, n + 1)).pvalue)


def test_small_n_notes_say_when_wilcoxon_cannot_reach_significance():
    five = paired_test(np.zeros(5), np.arange(1.0, 6.0))
    assert five["p_wilcoxon"] == pytest.approx(0.0625) and five["min_p_wilcoxon"] >= 0.05
    notes = row_notes({"n": 5, **five})
    assert any("Wilcoxon cannot reach p < 0.05" in n and "0.062" in n for n in notes)
    assert any("n = 5 < 10" in n for n in notes)
    six = row_notes({"n": 12, **paired_test(np.zeros(12), np.arange(1.0, 13.0))})
    assert six == []


def _rows(ps: list[tuple[float, float]], n: int = 12) -> list[dict]:
    return [
        {"variant": f"v{i}", "baseline": "base", "metric": "m", "n": n, "p_ttest": t, "p_wilcoxon": w,
         "min_p_wilcoxon": min_p_wilcoxon(n), "n_nonzero": n}
        for i, (t, w) in enumerate(ps)
    ]  # fmt: skip


def test_correct_table_adjusts_each_p_column_over_the_experiment():
    rows = correct_table(_rows([(0.01, 0.02), (0.04, math.nan), (0.03, 0.01), (0.005, 0.04)]), "holm")
    np.testing.assert_allclose([r["p_ttest_adj"] for r in rows], HOLM)
    # Wilcoxon family: 3 defined p-values, sorted 0.01, 0.02, 0.04 -> 0.03, 0.04, 0.04
    wil = [r["p_wilcoxon_adj"] for r in rows]
    assert wil[0] == pytest.approx(0.04) and math.isnan(wil[1])
    assert wil[2] == pytest.approx(0.03) and wil[3] == pytest.approx(0.04)
    assert all(r["correction"] == "holm" and r["n_tests"] == 4 for r in rows)
    assert rows[0]["n_tests_p_wilcoxon"] == 3
    assert [r["p_ttest"] for r in rows] == [0.01, 0.04, 0.03, 0.005]  # raw kept


def test_family_note_when_holm_makes_wilcoxon_significance_impossible():
    # n = 7: smallest Wilcoxon p 2/128 = 0.0156; Holm over 4 tests multiplies it to 0.0625
    rows = correct_table(_rows([(0.01, 0.02)] * 4, n=7), "holm")
    assert any("no Wilcoxon test can reach adjusted p < 0.05" in n for n in family_notes(rows))
    assert family_notes(correct_table(_rows([(0.01, 0.02)] * 2, n=7), "holm")) == []
    assert family_notes(correct_table(_rows([(0.01, 0.02)] * 4, n=7), "bh")) == []
