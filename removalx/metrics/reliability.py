"""Metric reliability alpha (STEP journal paper, Sec. IV-B, Eq. 20-21).

Given a metric's scores ``A[N, M]`` of ``M`` attribution methods on ``N`` samples and the
scores ``r[N]`` of random attribution maps on the same samples,

* ``w_p = (1/M) sum_m 1[A[p, m] better than r[p]]`` (Eq. 21, Axiom 1), and
* ``alpha = sum_{p<q} w_p w_q rho(A[p], A[q]) / sum_{p<q} w_p w_q`` (Eq. 20, Axiom 2),

where ``rho`` is Spearman's rank correlation between two samples' rows. "Better" is ``>``
for metrics where higher is better (insertion AUC, as in Eq. 21) and ``<`` for metrics where
lower is better (deletion AUC).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from removalx.errors import ConfigError

__all__ = ["reliability_alpha", "spearman"]


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation (``scipy.stats.spearmanr``: ties share their average rank).

    Returns 0 when either row is constant (SciPy's NaN there: no ranking, so no agreement);
    Eq. 20 then weighs that pair of samples as uncorrelated.
    """
    from scipy import stats

    x, y = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if x.size < 2 or np.all(x == x[0]) or np.all(y == y[0]):
        return 0.0
    return float(stats.spearmanr(x, y).statistic)


def reliability_alpha(
    scores: Any, random: Any, higher_is_better: bool = True, return_details: bool = False
) -> float | dict[str, Any]:
    """Reliability ``alpha`` of a metric (STEP journal Eq. 20-21).

    Parameters
    ----------
    scores : array_like
        ``float[N, M]``: the metric on ``N`` samples (rows) for ``M`` methods (columns).
    random : array_like
        ``float[N]``: the metric of a random attribution map on each sample.
    higher_is_better : bool
        Orientation of the metric (``True`` for insertion AUC, ``False`` for deletion AUC).
    return_details : bool
        Also return the weights ``w`` and the pairwise correlations.

    Returns
    -------
    float or dict
        ``alpha`` in [-1, 1]; NaN when every pair has weight 0 (no method beats random on two
        samples) or ``N < 2``.
    """
    a = np.asarray(scores, dtype=np.float64)
    r = np.asarray(random, dtype=np.float64).reshape(-1)
    if a.ndim != 2 or a.shape[0] != r.shape[0]:
        raise ConfigError(
            f"reliability_alpha needs scores [N, M] and random [N]; got {a.shape} and {r.shape}.",
            "One row per sample, one column per method; one random score per sample.",
        )
    if not (np.isfinite(a).all() and np.isfinite(r).all()):
        raise ConfigError("reliability_alpha got NaN or infinite scores.", "Drop the samples that failed.")
    better = a > r[:, None] if higher_is_better else a < r[:, None]
    w = better.mean(axis=1)
    n = a.shape[0]
    num = den = 0.0
    rho: dict[tuple[int, int], float] = {}
    for p in range(n - 1):
        for q in range(p + 1, n):
            c = spearman(a[p], a[q])
            rho[(p, q)] = c
            num += w[p] * w[q] * c
            den += w[p] * w[q]
    alpha = num / den if den > 0 else float("nan")
    if return_details:
        return {"alpha": alpha, "w": w.tolist(), "rho": rho}
    return alpha
