"""The report's statistics of many comparisons: corrected paired tests, effect sizes, their charts.

``ablate`` compares every variant with the first on every metric. :func:`paired_part` renders
the table of those tests: the paired mean difference and Cohen's d_z, each with its BCa
bootstrap interval (:func:`removalx.experiments.stats.paired_test`), raw and adjusted p-values
of the paired t and Wilcoxon tests (:func:`removalx.experiments.multiplicity.correct_table`,
the correction named above the table), and notes where ``n`` is too small.
:func:`paired_charts_part` draws the paired differences with their intervals, one chart per
metric (:func:`removalx.experiments.figures.paired_diffs`).

:func:`display_names` finds the names variants are shown under, and
:func:`with_stored_metrics` adds to an experiment the metrics whose scores are stored for its
methods but missing from its metric list (databases written before reruns added to it).
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from typing import Any

from removalx.experiments.figures import figure_name, paired_diffs
from removalx.experiments.multiplicity import correct_table, correction_label, family_notes, format_p
from removalx.experiments.report_context import ExperimentView, ReportContext
from removalx.experiments.runner import Scope, paired_table
from removalx.experiments.store import Store

__all__ = [
    "display_names",
    "paired_charts_part",
    "paired_lines",
    "paired_part",
    "paired_rows",
    "with_stored_metrics",
]


def display_names(store: Store, exp: Mapping[str, Any]) -> dict[str, str]:
    """``{method: display name}`` of the methods of ``exp`` that have one.

    Looked up, first found wins: the experiment's recorded ``display_names`` (``{label:
    name}``), then ``display_name`` in the method's stored recipe, its recipe's ``metadata``,
    or its explanation's ``meta``. A method without one keeps its label (charts wrap it).
    """
    args = exp.get("args") if isinstance(exp.get("args"), dict) else {}
    given = args.get("display_names") if isinstance(args, dict) else None
    out = {str(k): str(v) for k, v in given.items() if v} if isinstance(given, dict) else {}
    methods = [m for m in exp.get("methods", []) if m not in out]
    for method, rec in store.method_records(methods).items():
        recipe, meta = rec.get("recipe") or {}, rec.get("meta") or {}
        metadata = recipe.get("metadata") if isinstance(recipe.get("metadata"), dict) else {}
        for where in (recipe, metadata, meta):
            name = where.get("display_name") if isinstance(where, dict) else None
            if isinstance(name, str) and name.strip():
                out[method] = name.strip()
                break
    return out


def with_stored_metrics(store: Store, exp: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """``exp`` with every metric scored for its methods in its scope, and a note naming the added.

    A database written before reruns added to the metric list may have lost a metric from
    the list while its scores are stored; the report shows those too and says so.
    """
    scope = Scope.of_experiment(exp)
    listed = list(exp.get("metrics", []))
    extra: dict[str, int] = {}
    for r in store.metric_names(list(exp.get("methods", []))):
        if r["metric"] not in listed and scope.admits(r):
            extra[r["metric"]] = extra.get(r["metric"], 0) + int(r["n"])
    if not extra:
        return exp, ""
    note = (
        "Also shown: scores stored for these methods under metrics the experiment's metric list "
        "lacks (an earlier run with other --metrics): "
        + ", ".join(f"{m} ({n} scores)" for m, n in extra.items())
        + "."
    )
    return {**exp, "metrics": listed + list(extra)}, note


def paired_rows(ctx: ReportContext, view: ExperimentView) -> list[dict[str, Any]]:
    """The experiment's paired tests, corrected as one family with ``ctx``'s correction (once per view)."""
    cached: list[dict[str, Any]] | None = getattr(view, "_paired_rows", None)
    if cached is None:
        rows = paired_table(ctx.store, view.methods, view.metrics, view.scope)
        cached = correct_table(rows, getattr(ctx, "correction", "holm"))
        view._paired_rows = cached  # type: ignore[attr-defined]
    return cached


def _interval(lo: Any, hi: Any, spec: str = ".3g") -> str:
    """``[lo, hi]`` (``–`` when undefined); differences keep 3 significant digits (never ``-0.000``)."""
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in (lo, hi)):
        return "–"
    return f"[{lo:{spec}}, {hi:{spec}}]"


def _num(v: Any, spec: str = ".3g") -> str:
    return f"{v:{spec}}" if isinstance(v, (int, float)) and math.isfinite(v) else "–"


def _row_html(r: Mapping[str, Any], names: Mapping[str, str]) -> str:
    variant = str(r["variant"])
    shown = html.escape(names.get(variant, variant))
    title = f" title='{html.escape(variant)}'" if variant in names else ""
    cells = [
        f"<td{title}>{shown}</td>",
        f"<td>{html.escape(str(r['metric']))}</td>",
        f"<td>{int(r['n'])}</td>",
        f"<td>{_num(r.get('diff_mean'))} {_interval(r.get('diff_ci_low'), r.get('diff_ci_high'))}</td>",
        f"<td>{_num(r.get('dz'), '.2f')} {_interval(r.get('dz_ci_low'), r.get('dz_ci_high'), '.2f')}</td>",
        f"<td>{format_p(r.get('p_ttest'))}</td><td>{format_p(r.get('p_ttest_adj'))}</td>",
        f"<td>{format_p(r.get('p_wilcoxon'))}</td><td>{format_p(r.get('p_wilcoxon_adj'))}</td>",
        f"<td class='meaning'>{html.escape('; '.join(r.get('notes') or []))}</td>",
    ]
    return "<tr>" + "".join(cells) + "</tr>"


def paired_part(ctx: ReportContext, view: ExperimentView) -> str:
    """``ablate``: every variant against the first, corrected for the experiment's many tests."""
    if view.exp["kind"] != "ablate" or len(view.methods) < 2:
        return ""
    rows = paired_rows(ctx, view)
    if not rows:
        return ""
    names = display_names(ctx.store, view.exp)
    correction = str(rows[0]["correction"])
    base = names.get(view.methods[0], view.methods[0])
    head = (
        f"<h3>Paired comparisons against {html.escape(base)}</h3>"
        f"<p class='note'>p-value correction: "
        f"{html.escape(correction_label(correction, int(rows[0]['n_tests'])))}. "
        "Effect sizes: the paired mean difference (variant − first) and Cohen's d_z (mean difference "
        "/ standard deviation of the differences), each with its 95% BCa bootstrap interval "
        "(scipy.stats.bootstrap). p: two-sided paired t test and Wilcoxon signed-rank test, raw and "
        "adjusted; p below 1e-4 prints as &lt;1e-4.</p>"
    )
    table = (
        "<table><tr><th>variant</th><th>metric</th><th>videos</th><th>mean diff [95% CI]</th>"
        "<th>d_z [95% CI]</th><th>p t</th><th>p t adj.</th><th>p Wilcoxon</th><th>p Wilcoxon adj.</th>"
        "<th class='meaning'>notes</th></tr>" + "".join(_row_html(r, names) for r in rows) + "</table>"
    )
    notes = "".join(f"<p class='note'>{html.escape(n)}</p>" for n in family_notes(rows))
    return head + _confound_warnings(view.exp) + table + notes


def _confound_warnings(exp: Mapping[str, Any]) -> str:
    """The substrate-confound warnings the run recorded (:mod:`removalx.experiments.substrate_check`)."""
    args = exp.get("args") or {}
    warnings = args.get("substrate_check") if isinstance(args, Mapping) else None
    if not isinstance(warnings, list) or not warnings:
        return ""
    return "".join(f"<p class='warning'>{html.escape(str(w)[:600])}</p>" for w in warnings[:20])


def paired_charts_part(ctx: ReportContext, view: ExperimentView) -> str:
    """``ablate``: one chart per metric of the paired differences with their intervals."""
    if view.exp["kind"] != "ablate" or len(view.methods) < 2:
        return ""
    rows = paired_rows(ctx, view)
    names = display_names(ctx.store, view.exp)
    orient = {
        m: next((r[m].get("higher_is_better") for r in view.rows if isinstance(r.get(m), dict)), None)
        for m in view.metrics
    }
    charts = []
    for metric in view.metrics:
        fig = paired_diffs(metric, rows, names, orient.get(metric))
        if fig is None:
            continue
        caption = (
            f"{metric}: paired difference of each variant from the first "
            f"({names.get(view.methods[0], view.methods[0])}), mean and 95% BCa bootstrap interval; "
            f"p: paired t test, correction {correction_label(str(rows[0]['correction']))}."
        )
        charts.append(ctx.figures.add(fig, figure_name(view.exp["name"], metric, "paired-diffs"), caption))
    if not charts:
        return ""
    return "<h3>Paired differences (95% CI)</h3><div class='charts'>" + "".join(charts) + "</div>"


def paired_lines(rows: list[dict[str, Any]]) -> list[str]:
    """The command line's text of corrected paired tests (rows of :func:`correct_table`).

    A header naming the correction and the family's size, then one line per variant x metric:
    mean difference and d_z with their 95% BCa bootstrap intervals, raw and adjusted p of both
    tests, and the row's notes; last the family's notes.
    """
    if not rows:
        return []
    n_tests = int(rows[0]["n_tests"])
    out = [
        f"paired comparisons against {rows[0]['baseline']}; p corrected: "
        f"{correction_label(str(rows[0]['correction']), n_tests)}; intervals: 95% BCa bootstrap"
    ]
    for r in rows:
        notes = f"  [{'; '.join(r['notes'])}]" if r.get("notes") else ""
        out.append(
            f"  {r['variant']} vs {r['baseline']} on {r['metric']} (n={r['n']}): "
            f"diff {_num(r.get('diff_mean'))} {_interval(r.get('diff_ci_low'), r.get('diff_ci_high'))}, "
            f"d_z {_num(r.get('dz'), '.2f')} {_interval(r.get('dz_ci_low'), r.get('dz_ci_high'), '.2f')}; "
            f"p_t={format_p(r.get('p_ttest'))} (adj {format_p(r.get('p_ttest_adj'))}), "
            f"p_wilcoxon={format_p(r.get('p_wilcoxon'))} (adj {format_p(r.get('p_wilcoxon_adj'))})" + notes
        )
    out.extend(f"  {n}" for n in family_notes(rows))
    return out
