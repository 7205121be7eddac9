"""Summary statistics of experiment results: means with 95% confidence intervals and paired tests.

One interval method for every bounded score removalx reports (metric means of ``evaluate`` /
``compare`` / ``ablate``, the report's tables, the user study's mean scores):
:func:`bootstrap_ci`, SciPy's bias-corrected and accelerated (BCa) bootstrap interval of the
mean (``scipy.stats.bootstrap``, Efron & Tibshirani, *An Introduction to the Bootstrap*, 1993,
Ch. 14), clipped to the score's range, labelled (:func:`ci_label`) and flagged when fewer than
:data:`MIN_TRUSTED_N` values back it. Times keep Student-t intervals (:func:`mean_ci`).
:func:`paired_test` compares two methods on the same videos: the paired mean difference and
the standardised difference Cohen's d_z, each with the same bootstrap interval, the paired
t test and the Wilcoxon signed-rank test, and the smallest p the Wilcoxon test can reach with
that many pairs (:func:`min_p_wilcoxon`). Corrections across the tests of an experiment are
:mod:`removalx.experiments.multiplicity`. SciPy gives the bootstrap, the t quantiles, the
paired t test and the Wilcoxon signed-rank test.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = [
    "ALPHA",
    "BOOTSTRAP_RESAMPLES",
    "MIN_TRUSTED_N",
    "SMALL_N_NOTE",
    "bootstrap_ci",
    "ci_label",
    "format_interval",
    "mean_ci",
    "min_p_wilcoxon",
    "paired_test",
    "score_range",
]

#: Resamples of :func:`bootstrap_ci` (Efron & Tibshirani suggest >= 1000 for BCa intervals).
BOOTSTRAP_RESAMPLES = 2000
#: Resamples drawn at once (``scipy.stats.bootstrap``'s ``batch``): memory is ``_CHUNK x n``.
_CHUNK = 250
#: Below this many values an interval is shown with :data:`SMALL_N_NOTE` (our choice, labelled).
MIN_TRUSTED_N = 10
#: The flag shown next to an interval backed by fewer than :data:`MIN_TRUSTED_N` values.
SMALL_N_NOTE = f"n < {MIN_TRUSTED_N}: too small to trust"
#: What each ``ci_method`` of :func:`bootstrap_ci` is called in tables and exports.
_METHOD_NAMES = {
    "bca": "BCa bootstrap CI",
    "percentile": "percentile bootstrap CI (BCa undefined)",
    "point": "no spread: every value equal, the interval is the point",
    "none": "no interval: fewer than 2 values",
    "undefined": "no interval: the statistic is undefined on some resamples (no spread)",
    "no_spread": "undefined: the differences have no spread",
}


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


#: Significance level the small-n notes refer to (the conventional 0.05; removalx's choice).
ALPHA = 0.05


def min_p_wilcoxon(n_nonzero: int) -> float:
    """The smallest two-sided p-value the exact Wilcoxon signed-rank test can give with ``n`` pairs.

    With ``n`` nonzero differences the signed-rank statistic has ``2**n`` equally likely sign
    patterns under the null hypothesis; the most extreme (every difference of one sign) has
    two-sided probability ``2 / 2**n`` (Wilcoxon, 1945; the exact distribution
    ``scipy.stats.wilcoxon`` uses up to 50 pairs). At ``n <= 5`` this is at least 0.0625: the
    test cannot reach p < 0.05 whatever the data. Zero differences are dropped first
    (``zero_method="wilcox"``, SciPy's default), so ``n`` counts the nonzero ones.
    """
    return 1.0 if n_nonzero < 1 else min(1.0, 2.0 ** (1 - int(n_nonzero)))


def _dz(x: np.ndarray, axis: int = -1) -> Any:
    """Cohen's d_z of paired differences ``x``: mean / sample standard deviation (ddof 1)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.mean(x, axis=axis) / np.std(x, axis=axis, ddof=1)


def _effect_ci(d: np.ndarray, level: float, resamples: int, seed: int) -> dict[str, Any]:
    """Cohen's d_z of ``d`` with its BCa bootstrap interval (percentile where BCa is undefined)."""
    out: dict[str, Any] = {"dz": math.nan, "dz_ci_low": math.nan, "dz_ci_high": math.nan}
    method = "none" if d.size < 2 else "no_spread"
    if d.size >= 2 and float(d.std(ddof=1)) > 0:
        out["dz"] = float(_dz(d))
        method = "bca"
        lo, hi = _scipy_interval(d, level, resamples, seed, "BCa", _dz)
        if not (math.isfinite(lo) and math.isfinite(hi)):
            method = "percentile"
            lo, hi = _scipy_interval(d, level, resamples, seed, "percentile", _dz)
        if math.isfinite(lo) and math.isfinite(hi):
            out["dz_ci_low"], out["dz_ci_high"] = lo, hi
        else:  # some resamples have no spread (d_z infinite): no interval
            method = "undefined"
    out["dz_ci_method"] = method
    out["dz_ci_label"] = ci_label(method, level)
    return out


def paired_test(
    a: Any,
    b: Any,
    value_range: tuple[float, float] | None = None,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, Any]:
    """Paired comparison of ``b`` against ``a`` (same videos, same order): effect sizes and tests.

    The effect sizes are the paired mean difference ``b - a`` and the standardised one,
    Cohen's d_z = mean difference / standard deviation of the differences (Cohen, *Statistical
    Power Analysis for the Behavioral Sciences*, 1988, Sec. 2.3; Lakens, 2013, Eq. 6), each
    with the project's one interval: the BCa bootstrap interval (:func:`bootstrap_ci`, the
    difference's interval clipped to ``[low - high, high - low]`` of ``value_range``). The
    tests are the paired t test (``scipy.stats.ttest_rel``) and the Wilcoxon signed-rank test
    (``scipy.stats.wilcoxon``), both two-sided and uncorrected (correct them across an
    experiment with :func:`removalx.experiments.multiplicity.correct_table`).

    Parameters
    ----------
    a, b : array_like
        Scores of the baseline and the variant on the same videos; pairs with a NaN are dropped.
    value_range : tuple of float, optional
        The metric's range; clips the difference's interval.
    seed : int
        Seed of the bootstrap resampling.
    level : float
        Coverage of the intervals.

    Returns
    -------
    dict
        ``diff_*`` (:func:`bootstrap_ci` of the differences, prefixed), ``dz``, ``dz_ci_low``,
        ``dz_ci_high``, ``dz_ci_method``, ``dz_ci_label`` (NaN when the differences have no
        spread), ``p_ttest``, ``p_wilcoxon`` (NaN when undefined: fewer than two pairs or all
        differences 0), ``n_nonzero`` and ``min_p_wilcoxon`` (:func:`min_p_wilcoxon`).
    """
    from scipy import stats

    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    d = y[ok] - x[ok]
    span = None if value_range is None else (value_range[0] - value_range[1], value_range[1] - value_range[0])
    diff = bootstrap_ci(d, level=level, seed=seed, value_range=span)
    out: dict[str, Any] = {f"diff_{k}": v for k, v in diff.items()}
    out.update(_effect_ci(d, level, BOOTSTRAP_RESAMPLES, seed))
    n_nonzero = int(np.count_nonzero(d))
    out.update(p_ttest=math.nan, p_wilcoxon=math.nan, n_nonzero=n_nonzero)
    out["min_p_wilcoxon"] = min_p_wilcoxon(n_nonzero)
    if d.size >= 2 and n_nonzero > 0:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out["p_ttest"] = float(stats.ttest_rel(y[ok], x[ok]).pvalue)
            with contextlib.suppress(ValueError):
                out["p_wilcoxon"] = float(stats.wilcoxon(d).pvalue)
    return out


def ci_label(method: str, level: float = 0.95) -> str:
    """The label of an interval of :func:`bootstrap_ci` (e.g. ``"95% BCa bootstrap CI"``)."""
    name = _METHOD_NAMES.get(method, str(method)[:40])
    return f"{100 * level:g}% {name}" if method in ("bca", "percentile") else name


def format_interval(stats: Mapping[str, Any], digits: int = 3) -> str:
    """``[lo, hi]`` of an interval of :func:`bootstrap_ci` (``-`` when undefined), flagged when small.

    Used by the command line and the report so that every table prints an interval the same
    way: both ends (never a ``±`` half-width: a bootstrap interval is not symmetric) and
    ``(n < 10: too small to trust)`` when :data:`MIN_TRUSTED_N` values do not back it.
    """
    lo, hi = stats.get("ci_low"), stats.get("ci_high")
    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
        return "-"
    text = f"[{lo:.{digits}f}, {hi:.{digits}f}]"
    return f"{text} ({SMALL_N_NOTE})" if stats.get("small_n") else text


def score_range(details: Mapping[str, Any]) -> tuple[float, float] | None:
    """The range of a metric's per-video values, read from one score's ``details`` (or ``None``).

    A metric may say it in ``details["value_range"]`` (``[low, high]``); otherwise the built-in
    metrics are recognised by what their details hold: insertion / deletion AUCs of
    probabilities lie in [0, 1] (``"curve"``, ``behavior: probability``), pointing-game hit
    rates in [0, 1] (``"hits"`` or ``"frame_scores"``), minimal masks in [0, 100] %
    (``"percent"``). Anything else (AUCs of logits, saliency metric) is unbounded: ``None``.
    """
    given = details.get("value_range")
    if isinstance(given, (list, tuple)) and len(given) == 2:
        return float(given[0]), float(given[1])
    settings = details.get("settings") or {}
    if "curve" in details and isinstance(settings, Mapping) and settings.get("behavior") == "probability":
        return 0.0, 1.0
    if "hits" in details or "frame_scores" in details:
        return 0.0, 1.0
    if "percent" in details:
        return 0.0, 100.0
    return None


def _scipy_interval(
    x: np.ndarray, level: float, resamples: int, seed: int, method: str, statistic: Any = np.mean
) -> tuple[float, float]:
    """SciPy's bootstrap interval of ``statistic`` (the mean) of ``x``: ``method`` ``"BCa"`` (NaN
    ends where BCa is undefined) or ``"percentile"`` (Efron & Tibshirani, Ch. 13-14)."""
    from scipy import stats

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # DegenerateDataWarning, RuntimeWarning: NaN ends
        res = stats.bootstrap(
            (x,),
            statistic,
            n_resamples=resamples,
            batch=_CHUNK,
            confidence_level=level,
            method=method,
            rng=np.random.default_rng(seed),
        )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def _bca(x: np.ndarray, level: float, resamples: int, seed: int) -> tuple[float, float]:
    """SciPy's BCa interval of the mean of ``x`` (NaN ends where BCa is undefined)."""
    return _scipy_interval(x, level, resamples, seed, "BCa")


def _percentile(x: np.ndarray, level: float, resamples: int, seed: int) -> tuple[float, float]:
    """The percentile bootstrap interval of the mean of ``x`` (Efron & Tibshirani, Ch. 13)."""
    return _scipy_interval(x, level, resamples, seed, "percentile")


def bootstrap_ci(
    values: Any,
    level: float = 0.95,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
    value_range: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """Mean and the BCa bootstrap ``level`` confidence interval of the mean, clipped and labelled.

    The interval is ``scipy.stats.bootstrap(method="BCa")`` (Efron & Tibshirani, *An
    Introduction to the Bootstrap*, 1993, Ch. 14: bias-corrected and accelerated), seeded by
    ``seed``. Where BCa is undefined with spread in the data (its bias correction or
    acceleration is infinite) the percentile interval (Ch. 13) stands in; when every value is
    equal the interval is the point. Both bootstrap intervals are quantiles of resampled means,
    so they stay inside the data's range; the interval is also clipped to ``value_range`` (the
    metric's range: AUCs [0, 1], study scores [-2, 2]). Below :data:`MIN_TRUSTED_N` values the
    result is flagged ``small_n`` (no bootstrap interval is reliable there).

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
    value_range : tuple of float, optional
        ``(low, high)`` the scores can take; the interval is clipped to it.

    Returns
    -------
    dict
        ``n``, ``mean``, ``sd`` (ddof 1), ``ci_low``, ``ci_high`` (NaN with fewer than two
        values), ``ci_method`` (``"bca"``, ``"percentile"``, ``"point"`` or ``"none"``),
        ``ci_label`` (e.g. ``"95% BCa bootstrap CI"``), ``small_n`` (``n <`` :data:`MIN_TRUSTED_N`)
        and ``value_range`` (list or ``None``).
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    x = x[np.isfinite(x)]
    out: dict[str, Any] = mean_ci(x, level)
    n = int(x.size)
    method = "none"
    if n >= 2 and np.all(x == x[0]):
        method, out["ci_low"], out["ci_high"] = "point", float(x[0]), float(x[0])
    elif n >= 2:
        method = "bca"
        lo, hi = _bca(x, level, resamples, seed)
        if not (math.isfinite(lo) and math.isfinite(hi)):
            method = "percentile"
            lo, hi = _percentile(x, level, resamples, seed)
        out["ci_low"], out["ci_high"] = max(lo, float(x.min())), min(hi, float(x.max()))
    if value_range is not None and math.isfinite(out["ci_low"]):
        low, high = float(value_range[0]), float(value_range[1])
        out["ci_low"] = min(max(out["ci_low"], low), high)
        out["ci_high"] = min(max(out["ci_high"], low), high)
    out.update(
        ci_method=method,
        ci_label=ci_label(method, level),
        small_n=n < MIN_TRUSTED_N,
        value_range=None if value_range is None else [float(value_range[0]), float(value_range[1])],
    )
    return out
