"""Summary statistics of experiment results: means with 95% confidence intervals and paired tests.

Uses SciPy (installed with scikit-image) for Student's t quantiles, the paired t test and
the Wilcoxon signed-rank test.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from typing import Any

import numpy as np

__all__ = ["mean_ci", "paired_test"]


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
