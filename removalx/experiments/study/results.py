"""``removalx study results``: scores per method (and model, dataset) and inter-rater agreement.

"removal-based video explanations", Sec. 5.3, Fig. 14 and 15: the average score of each
method on the -2..+2 scale, and the scores aggregated by dataset, network and method. The
paper reports means only; removalx adds (docs/fidelity.md, "User study"):

* the 95 % confidence interval of each mean: the BCa bootstrap over the group's *items* (each
  item's mean over its raters; :func:`removalx.experiments.stats.bootstrap_ci`, the interval
  of every removalx table), because the raters score the same items and their answers to one
  item are not independent; it is clipped to the scale [-2, 2], labelled, and flagged with
  fewer than 10 items;
* the distribution of the answers (how many -2, -1, 0, +1, +2);
* Krippendorff's alpha for ordinal data over all items and raters (the ``krippendorff``
  package; missing answers allowed), and the pairwise agreement: for every pair of raters,
  the share of the items both answered on which they gave the same answer (and answers at
  most one step apart), averaged over the pairs.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from removalx.experiments.stats import bootstrap_ci
from removalx.experiments.study import require

__all__ = ["GROUPS", "SCORES", "SCORE_RANGE", "agreement", "group_stats", "ordinal_alpha", "study_results"]

#: The answers, in order.
SCORES = (-2, -1, 0, 1, 2)

#: The range of a score (and of a mean score): the interval is clipped to it.
SCORE_RANGE = (float(SCORES[0]), float(SCORES[-1]))

#: What ``study results`` groups by: the paper's Fig. 14 (method) and Fig. 15 (dataset, network).
GROUPS = ("method", "model", "dataset")


def ordinal_alpha(matrix: Any) -> float:
    """Krippendorff's alpha for ordinal data of a raters x items matrix (NaN = no answer).

    NaN when it is undefined: fewer than two pairable answers, or no variation at all.
    """
    require("krippendorff", "Krippendorff's alpha (removalx study results)")
    import krippendorff

    m = np.asarray(matrix, dtype=np.float64)
    pairable = (np.isfinite(m).sum(axis=0) >= 2).sum()
    values = m[np.isfinite(m)]
    if pairable == 0 or np.unique(values).size < 2:
        return math.nan
    return float(krippendorff.alpha(reliability_data=m, level_of_measurement="ordinal", value_domain=SCORES))


def agreement(matrix: Any, raters: Sequence[str]) -> dict[str, Any]:
    """Pairwise agreement of a raters x items matrix (NaN = no answer).

    Returns ``exact`` and ``within_one`` (means over the rater pairs sharing an item) and
    ``pairs``: one row per pair with the items both answered and the two shares.
    """
    m = np.asarray(matrix, dtype=np.float64)
    pairs = []
    for a, b in itertools.combinations(range(m.shape[0]), 2):
        both = np.isfinite(m[a]) & np.isfinite(m[b])
        n = int(both.sum())
        if n == 0:
            continue
        d = np.abs(m[a, both] - m[b, both])
        pairs.append(
            {
                "raters": [raters[a], raters[b]],
                "n_items": n,
                "exact": float((d == 0).mean()),
                "within_one": float((d <= 1).mean()),
            }
        )
    return {
        "exact": float(np.mean([p["exact"] for p in pairs])) if pairs else math.nan,
        "within_one": float(np.mean([p["within_one"] for p in pairs])) if pairs else math.nan,
        "pairs": pairs,
    }


def group_stats(answers: Iterable[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """Per value of ``key`` (method, model or dataset): mean, 95 % BCa CI over items, distribution."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for a in answers:
        groups.setdefault(str(a[key]), []).append(a)
    out = []
    for value in sorted(groups):
        rows = groups[value]
        scores = [int(a["score"]) for a in rows]
        per_item: dict[str, list[int]] = {}
        for a in rows:
            per_item.setdefault(a["item_id"], []).append(int(a["score"]))
        ci = bootstrap_ci([float(np.mean(v)) for v in per_item.values()], value_range=SCORE_RANGE)
        out.append(
            {
                "by": key,
                "group": value,
                "n_answers": len(scores),
                "n_items": len(per_item),
                "n_raters": len({a["rater"] for a in rows}),
                "mean": float(np.mean(scores)),
                "ci_low": ci["ci_low"],
                "ci_high": ci["ci_high"],
                "ci_method": ci["ci_method"],
                "ci_label": ci["ci_label"],
                "small_n": ci["small_n"],
                "distribution": {str(s): scores.count(s) for s in SCORES},
            }
        )
    return out


def study_results(
    items: Sequence[dict[str, Any]], answers: Sequence[dict[str, Any]], raters: Sequence[str]
) -> dict[str, Any]:
    """Everything ``study results`` prints: group statistics and agreement.

    Parameters
    ----------
    items : sequence of dict
        The study's items (``id`` and the hidden ``method``, ``model``, ``dataset``).
    answers : sequence of dict
        ``rater``, ``item_id``, ``score`` and the item's ``method``, ``model``, ``dataset``.
    raters : sequence of str
        Every rater of the study (also those without answers).
    """
    ids = [it["id"] for it in items]
    col = {iid: j for j, iid in enumerate(ids)}
    who = sorted({*raters, *(a["rater"] for a in answers)})
    row = {r: i for i, r in enumerate(who)}
    matrix = np.full((len(who), len(ids)), np.nan)
    for a in answers:
        matrix[row[a["rater"]], col[a["item_id"]]] = int(a["score"])
    return {
        "n_items": len(ids),
        "n_raters": len(who),
        "n_answers": len(answers),
        "groups": {key: group_stats(answers, key) for key in GROUPS},
        "alpha_ordinal": ordinal_alpha(matrix) if len(answers) else math.nan,
        "agreement": agreement(matrix, who),
        "raters": [{"rater": r, "n_answers": int(np.isfinite(matrix[row[r]]).sum())} for r in who],
    }
