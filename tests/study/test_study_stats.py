"""Blind ordering and the ``study results`` statistics against hand-computed values."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from removalx.experiments.study.order import rater_order
from removalx.experiments.study.results import agreement, group_stats, ordinal_alpha, study_results

# -- ordering ---------------------------------------------------------------------------------------


def test_order_is_a_seeded_permutation_of_every_item():
    a = rater_order(7, "alice", 60)
    assert sorted(a) == list(range(60))  # every item exactly once
    assert rater_order(7, "alice", 60) == a  # resuming gives the same order
    assert a != list(range(60))


def test_order_differs_per_rater_and_per_seed():
    orders = {tuple(rater_order(0, f"rater{i}", 12)) for i in range(20)}
    assert len(orders) == 20  # 12! orders: twenty raters never share one
    assert rater_order(0, "alice", 12) != rater_order(1, "alice", 12)


def test_order_positions_are_uniform_over_raters():
    # Where item 0 lands over 3000 raters: each of 6 places about 500 times (chi-square, 5 dof).
    counts = np.zeros(6)
    for i in range(3000):
        counts[rater_order(3, f"r{i}", 6).index(0)] += 1
    chi2 = float(((counts - 500) ** 2 / 500).sum())
    assert chi2 < 20.5  # p < 0.001 for 5 dof


# -- Krippendorff's alpha ------------------------------------------------------------------------------


def _alpha_oracle(m: np.ndarray, values: list[int]) -> float:
    """Ordinal alpha from Krippendorff's definitions (coincidence matrix, rank-based delta^2)."""
    k = len(values)
    index = {v: i for i, v in enumerate(values)}
    o = np.zeros((k, k))
    for u in range(m.shape[1]):
        col = [int(x) for x in m[:, u] if np.isfinite(x)]
        if len(col) < 2:
            continue
        for i, j in itertools.permutations(range(len(col)), 2):
            o[index[col[i]], index[col[j]]] += 1.0 / (len(col) - 1)
    n_c = o.sum(axis=1)
    n = n_c.sum()
    delta = np.zeros((k, k))
    for c in range(k):
        for d in range(k):
            lo, hi = min(c, d), max(c, d)
            delta[c, d] = (n_c[lo : hi + 1].sum() - (n_c[c] + n_c[d]) / 2) ** 2
    d_o = (o * delta).sum() / n
    d_e = (np.outer(n_c, n_c) * delta).sum() / (n * (n - 1))
    return 1.0 - d_o / d_e


KRIPPENDORFF_2011 = np.array(
    [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, np.nan, np.nan, np.nan],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, np.nan, 3],
        [np.nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, np.nan],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, np.nan],
    ]
)


def test_alpha_on_krippendorffs_published_example():
    # "Computing Krippendorff's alpha-reliability" (2011), the 4 observers x 12 units example:
    # ordinal alpha = 0.815. Values 1..5 shifted to -2..+2 (ordinal alpha depends on ranks only).
    m = KRIPPENDORFF_2011 - 3
    assert ordinal_alpha(m) == pytest.approx(0.815, abs=5e-4)
    assert ordinal_alpha(m) == pytest.approx(_alpha_oracle(m, [-2, -1, 0, 1, 2]), abs=1e-9)


def test_alpha_small_case_by_hand():
    # Two raters, three items: (2, 2), (1, 2), (-2, -2). Coincidences: 2-2 x2, 1-2 and 2-1 once,
    # -2/-2 x2; n_c = {-2: 2, 1: 1, 2: 3}, n = 6. Ranks (n_c of -1 and 0 are 0):
    # delta(1, 2) = (1 + 3 - 2)^2 = 4; delta(-2, 1) = (2 + 0 + 0 + 1 - 1.5)^2 = 2.25;
    # delta(-2, 2) = (6 - 2.5)^2 = 12.25.
    # D_o = 2 * 4 / 6 = 4/3; D_e = 2 * (2*1*2.25 + 2*3*12.25 + 1*3*4) / 30 = 2 * 90 / 30 = 6.
    # alpha = 1 - (4/3) / 6 = 7/9.
    m = np.array([[2, 1, -2], [2, 2, -2]], dtype=float)
    assert ordinal_alpha(m) == pytest.approx(7 / 9, abs=1e-9)
    assert _alpha_oracle(m, [-2, -1, 0, 1, 2]) == pytest.approx(7 / 9, abs=1e-12)


def test_alpha_undefined_without_variation():
    assert math.isnan(ordinal_alpha(np.array([[1, 1], [1, 1]], dtype=float)))
    assert math.isnan(ordinal_alpha(np.array([[1, np.nan], [np.nan, 2]], dtype=float)))


# -- pairwise agreement and group statistics ------------------------------------------------------------


def test_pairwise_agreement_by_hand():
    m = np.array([[2, 1, -2, 0], [2, 2, -2, np.nan], [1, 1, 0, 0]], dtype=float)
    ag = agreement(m, ["a", "b", "c"])
    # a/b: items 0-2: equal, 1 apart, equal -> exact 2/3, within one 1
    # a/c: items 0-3: 1 apart, equal, 2 apart, equal -> exact 2/4, within one 3/4
    # b/c: items 0-2: 1 apart, 1 apart, 2 apart -> exact 0, within one 2/3
    pairs = {tuple(p["raters"]): p for p in ag["pairs"]}
    assert pairs[("a", "b")]["exact"] == pytest.approx(2 / 3) and pairs[("a", "b")]["n_items"] == 3
    assert pairs[("a", "c")]["within_one"] == pytest.approx(3 / 4)
    assert ag["exact"] == pytest.approx((2 / 3 + 1 / 2 + 0) / 3)
    assert ag["within_one"] == pytest.approx((1 + 3 / 4 + 2 / 3) / 3)


def _answers(table: dict[tuple[str, str], list[int]]) -> list[dict]:
    """``{(method, item): [score of rater 0, rater 1, ...]}`` as answer rows."""
    out = []
    for (method, item), scores in table.items():
        for r, s in enumerate(scores):
            out.append(
                {
                    "rater": f"r{r}",
                    "item_id": item,
                    "score": s,
                    "method": method,
                    "model": "m",
                    "dataset": "d",
                }
            )
    return out


def test_group_stats_by_hand():
    ans = _answers({("A", "i1"): [2, 1], ("A", "i2"): [0, 1], ("A", "i3"): [2, 2], ("B", "i4"): [-1, -2]})
    rows = {g["group"]: g for g in group_stats(ans, "method")}
    a = rows["A"]
    # six answers 2 1 0 1 2 2 -> mean 8/6; the interval: SciPy's BCa bootstrap of the item means
    # 1.5, 0.5, 2 (seed 0, 2000 resamples), flagged (3 items < 10), inside the scale [-2, 2]
    from scipy import stats

    assert a["mean"] == pytest.approx(8 / 6)
    assert a["n_answers"] == 6 and a["n_items"] == 3 and a["n_raters"] == 2
    oracle = stats.bootstrap(
        (np.array([1.5, 0.5, 2.0]),),
        np.mean,
        n_resamples=2000,
        batch=250,
        method="BCa",
        rng=np.random.default_rng(0),
    ).confidence_interval
    assert (a["ci_low"], a["ci_high"]) == pytest.approx((oracle.low, oracle.high), abs=1e-12)
    assert -2 <= a["ci_low"] <= a["ci_high"] <= 2 and a["small_n"] and a["ci_method"] == "bca"
    # Student's t would give 4/3 -+ 1.90 (t(0.975, 2) = 4.3027), past +2 on a -2..+2 scale
    half = 4.302653 * np.std([1.5, 0.5, 2.0], ddof=1) / math.sqrt(3)
    assert 4 / 3 + half > 2
    assert a["distribution"] == {"-2": 0, "-1": 0, "0": 1, "1": 2, "2": 3}
    b = rows["B"]
    assert b["mean"] == -1.5 and math.isnan(b["ci_low"])  # one item: no interval


def test_study_results_counts_raters_without_answers():
    items = [{"id": f"i{k}"} for k in range(3)]
    ans = _answers({("A", "i0"): [2, 2], ("A", "i1"): [1, 0], ("B", "i2"): [-2, -1]})
    res = study_results(items, ans, ["r0", "r1", "late"])
    assert res["n_raters"] == 3 and res["n_answers"] == 6
    assert {r["rater"]: r["n_answers"] for r in res["raters"]} == {"late": 0, "r0": 3, "r1": 3}
    m = np.array([[2, 1, -2], [2, 0, -1]], dtype=float)
    assert res["alpha_ordinal"] == pytest.approx(_alpha_oracle(m, [-2, -1, 0, 1, 2]), abs=1e-9)
