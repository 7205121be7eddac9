"""Summary statistics of experiment results: means with 95% confidence intervals and paired tests.

Metric scores get a percentile-bootstrap interval of the mean (:func:`bootstrap_ci`), which
stays inside the range of the scores and so inside the metric's range (an AUC's interval never
leaves [0, 1]). Times and paired differences get Student-t intervals (:func:`mean_ci`). SciPy
gives the t quantiles, the paired t test and the Wilcoxon signed-rank test.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from typing import Any

import numpy as np

__all__ = ["BOOTSTRAP_RESAMPLES", "bootstrap_ci", "mean_ci", "paired_test"]

#: Resamples of :func:`bootstrap_ci` (Efron & Tibshirani suggest >= 1000 for percentile intervals).
BOOTSTRAP_RESAMPLES = 2000
#: Resamples drawn at once: memory is ``_CHUNK x n`` whatever ``resamples`` is.
_CHUNK = 250


def mean_ci(values: Any, level: float = 0.95) -> dict[str, float]:
    """Mean, standard deviation and the Student-t ``level`` confidence interval of the mean.

    NaNs are dropped; with fewer than two values the interval is NaN.
    """
    from scipy import stats

    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    n = int(x.size)
    if n == 0:
        return {"n": 0, "mean": math.nan, "sd": math.nan, "ci_low": math.nan, "ci_high": math.nan}
    mean = float(x.mean())
    if n < 2:
        return {"n": n, "mean": mean, "sd": math.nan, "ci_low": math.nan, "ci_high": math.nan}
    sd = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
    return {"n": n, "mean": mean, "sd": sd, "ci_low": mean - half, "ci_high": mean + half}


def paired_test(a: Any, b: Any) -> dict[str, float]:
    """Paired comparison of ``b`` against ``a`` (same videos, same order).

    Returns the mean difference ``b - a`` with its 95% CI, the paired t-test p-value and the
    Wilcoxon signed-rank p-value (NaN when undefined: fewer than two pairs or all differences 0).
    """
    from scipy import stats

    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    d = y[ok] - x[ok]
    out: dict[str, float] = {f"diff_{k}": v for k, v in mean_ci(d).items()}
    out["p_ttest"] = math.nan
    out["p_wilcoxon"] = math.nan
    if d.size >= 2 and np.any(d != 0):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out["p_ttest"] = float(stats.ttest_rel(y[ok], x[ok]).pvalue)
            with contextlib.suppress(ValueError):
                out["p_wilcoxon"] = float(stats.wilcoxon(d).pvalue)
    return out


def bootstrap_ci(
    values: Any, level: float = 0.95, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0
) -> dict[str, Any]:
    """Mean and the percentile-bootstrap ``level`` confidence interval of the mean.

    The interval is the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of the means of
    ``resamples`` resamples (with replacement, same size) of the finite values (Efron &
    Tibshirani, *An Introduction to the Bootstrap*, 1993, Ch. 13, the percentile interval).
    Every resampled mean lies between the smallest and the largest value, so the interval
    never leaves the range of the data, hence never the metric's range (a Student-t interval
    of AUCs near 1 can reach past 1). The price: with very few values it is narrower than the
    t interval (it ignores the t quantile's small-sample widening).

    Parameters
    ----------
    values : array_like
        Scores; NaNs and infinities are dropped.
    level : float
        Coverage of the interval.
    resamples : int
        Bootstrap resamples.
    seed : int
        Seed of the resampling (the same values give the same interval).

    Returns
    -------
    dict
        ``n``, ``mean``, ``sd`` (ddof 1), ``ci_low``, ``ci_high`` (NaN interval with fewer
        than two values), ``ci_method`` = ``"bootstrap"``.
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    x = x[np.isfinite(x)]
    out: dict[str, Any] = {**mean_ci(x, level), "ci_method": "bootstrap"}
    n = int(x.size)
    if n < 2:
        return out
    rng = np.random.default_rng(seed)
    means = np.empty(resamples, dtype=np.float64)
    for start in range(0, resamples, _CHUNK):
        k = min(_CHUNK, resamples - start)
        means[start : start + k] = x[rng.integers(0, n, size=(k, n))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    # Quantiles interpolate between resampled means; clip the last ulp to the data's range.
    out["ci_low"], out["ci_high"] = float(max(lo, x.min())), float(min(hi, x.max()))
    return out
