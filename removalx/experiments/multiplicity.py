"""Many comparisons in one experiment: corrected p-values, their formatting and small-n notes.

An ``ablate`` of five variants on three metrics runs 12 paired tests per test kind; at
p < 0.05 each, some "differences" are expected by chance alone. :func:`correct_table` adjusts
the p-values of every test of an experiment as one family, each p column (paired t,
Wilcoxon) separately, with

- ``"holm"`` (default): Holm's step-down procedure (Holm, *A Simple Sequentially Rejective
  Multiple Test Procedure*, Scand. J. Statist. 6, 1979), controls the family-wise error rate;
- ``"bh"``: Benjamini & Hochberg's step-up procedure (J. R. Statist. Soc. B 57, 1995),
  controls the false discovery rate;
- ``"none"``: the raw p-values (labelled so).

The adjusted values are the usual "adjusted p-values" (those of statsmodels'
``multipletests`` / R's ``p.adjust``): a test is rejected at level alpha when its adjusted p
is below alpha. Tests whose p is undefined (NaN) are left out of the family.
:func:`format_p` prints a p-value without ever rounding it to ``0.000``;
:func:`family_notes` says when ``n`` is too small for a test to reach significance.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from removalx.errors import ConfigError, truncate
from removalx.experiments.stats import ALPHA, MIN_TRUSTED_N

__all__ = [
    "CORRECTIONS",
    "DEFAULT_CORRECTION",
    "P_COLUMNS",
    "adjust_pvalues",
    "check_correction",
    "correct_table",
    "correction_label",
    "family_notes",
    "format_p",
    "row_notes",
]

#: The choices of ``--correction``.
CORRECTIONS = ("holm", "bh", "none")
#: What ``ablate`` and the report use unless told otherwise.
DEFAULT_CORRECTION = "holm"
#: The p-value columns of a paired-test row (:func:`removalx.experiments.stats.paired_test`).
P_COLUMNS = ("p_ttest", "p_wilcoxon")
#: Below this a p-value prints as ``<1e-4``.
P_FLOOR = 1e-4
_NAMES = {
    "holm": "Holm step-down (family-wise error rate)",
    "bh": "Benjamini-Hochberg step-up (false discovery rate)",
    "none": "none (raw p-values)",
}


def check_correction(correction: str) -> str:
    """``correction`` if it is one of :data:`CORRECTIONS`, else :class:`ConfigError`."""
    if correction not in CORRECTIONS:
        raise ConfigError(
            f"Unknown p-value correction {truncate(str(correction), 40)!r}.",
            f"Use one of {', '.join(CORRECTIONS)} (e.g. --correction holm).",
        )
    return correction


def adjust_pvalues(pvalues: Sequence[float] | np.ndarray, correction: str = DEFAULT_CORRECTION) -> np.ndarray:
    """Adjusted p-values of one family of tests (NaNs stay NaN and are not counted).

    With the ``m`` finite p-values sorted, ``p_(1) <= ... <= p_(m)``:

    - Holm (1979): ``adj_(i) = max_{j <= i} min(1, (m - j + 1) p_(j))``;
    - Benjamini-Hochberg (1995): ``adj_(i) = min_{j >= i} min(1, m p_(j) / j)``;
    - none: ``adj = p``.

    Returns the adjusted values in the input's order.
    """
    check_correction(correction)
    p = np.asarray(pvalues, dtype=np.float64).ravel()
    out = np.full(p.shape, math.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = ok.size
    if m == 0:
        return out
    if correction == "none":
        out[ok] = p[ok]
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    ranked = p[order]
    ranks = np.arange(1, m + 1, dtype=np.float64)
    if correction == "holm":
        adj = np.maximum.accumulate(np.minimum(1.0, (m - ranks + 1) * ranked))
    else:
        adj = np.minimum.accumulate(np.minimum(1.0, m * ranked / ranks)[::-1])[::-1]
    out[order] = adj
    return out


def correction_label(correction: str, n_tests: int | None = None) -> str:
    """What a table's adjusted p-values are, e.g. ``"Holm step-down (...) over 6 tests"``."""
    name = _NAMES[check_correction(correction)]
    if n_tests is None or correction == "none":
        return name
    return f"{name} over {n_tests} test{'s' if n_tests != 1 else ''} per p column"


def format_p(p: Any) -> str:
    """A p-value for a table: ``<1e-4`` below :data:`P_FLOOR`, never ``0.000``.

    ``–`` when undefined; two significant digits below 0.01 (``0.0023``, ``0.00041``), three
    decimals above (``0.049``, ``0.310``), ``1`` at 1.
    """
    if p is None or not isinstance(p, (int, float)) or not math.isfinite(p):
        return "–"
    if p < P_FLOOR:
        return f"<{P_FLOOR:.0e}".replace("e-0", "e-")
    if p >= 1:
        return "1"
    if p < 0.01:
        return f"{p:.2g}"
    return f"{p:.3f}"


def correct_table(
    rows: Sequence[Mapping[str, Any]], correction: str = DEFAULT_CORRECTION
) -> list[dict[str, Any]]:
    """``rows`` (paired tests of one experiment) with ``<column>_adj`` for every p column.

    All rows form one family per p column (:data:`P_COLUMNS`): with ``ablate`` every variant x
    metric test. Each row also gets ``correction`` and ``n_tests`` (the family's size: tests
    with a defined p) and ``notes`` (:func:`row_notes`).
    """
    check_correction(correction)
    out = [dict(r) for r in rows]
    for col in P_COLUMNS:
        raw = [float(r.get(col, math.nan)) for r in out]
        adj = adjust_pvalues(raw, correction)
        n_tests = int(np.isfinite(np.asarray(raw, dtype=np.float64)).sum())
        for r, a in zip(out, adj, strict=True):
            r[f"{col}_adj"] = float(a)
            r[f"n_tests_{col}"] = n_tests
    for r in out:
        r["correction"] = correction
        r["n_tests"] = max((int(r[f"n_tests_{c}"]) for c in P_COLUMNS), default=0)
        r["notes"] = row_notes(r)
    return out


def row_notes(row: Mapping[str, Any]) -> list[str]:
    """Short notes on one paired test: too few pairs to trust, or a Wilcoxon test that cannot win.

    The Wilcoxon bound is :func:`removalx.experiments.stats.min_p_wilcoxon`; the note threshold
    is :data:`removalx.experiments.stats.ALPHA` (0.05).
    """
    notes = []
    n = int(row.get("n", row.get("diff_n", 0)) or 0)
    if n < MIN_TRUSTED_N:
        notes.append(f"n = {n} < {MIN_TRUSTED_N}: intervals too small to trust")
    min_p = row.get("min_p_wilcoxon")
    k = int(row.get("n_nonzero", n) or 0)
    if isinstance(min_p, (int, float)) and math.isfinite(min_p) and min_p >= ALPHA and k >= 1:
        notes.append(
            f"Wilcoxon cannot reach p < {ALPHA:g}: with {k} nonzero difference{'s' if k != 1 else ''} "
            f"its smallest p is {format_p(min_p)}"
        )
    return notes


def family_notes(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Notes on a corrected table as a whole (rows of :func:`correct_table`).

    Under Holm every adjusted p is at least ``m`` times the family's smallest raw p, so when
    ``m`` times the smallest p the Wilcoxon test can reach (over the rows) is not below 0.05, no
    Wilcoxon test of the experiment can be significant after correction.
    """
    if not rows:
        return []
    correction = str(rows[0].get("correction", DEFAULT_CORRECTION))
    m = int(rows[0].get("n_tests_p_wilcoxon", 0) or 0)
    bounds = [
        float(r["min_p_wilcoxon"])
        for r in rows
        if isinstance(r.get("min_p_wilcoxon"), (int, float)) and math.isfinite(r["min_p_wilcoxon"])
    ]
    notes = []
    if correction == "holm" and m > 1 and bounds and min(1.0, m * min(bounds)) >= ALPHA:
        notes.append(
            f"With these n, no Wilcoxon test can reach adjusted p < {ALPHA:g}: Holm over {m} tests "
            f"multiplies the smallest p, at best {format_p(min(bounds))}, by {m}."
        )
    return notes
