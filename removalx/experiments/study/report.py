"""The "user study" section of ``removalx report``: every study in the database, rated or not.

Per study: the mean score of each method and model with its 95 % BCa bootstrap CI and the distribution of
the answers (the paper's Fig. 14 and 15, "removal-based video explanations", Sec. 5.3),
Krippendorff's alpha (ordinal) and the pairwise agreement (see
:mod:`removalx.experiments.study.results`). Empty when the database holds no study.
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

from removalx.experiments.stats import SMALL_N_NOTE, format_interval
from removalx.experiments.study import SCALE, StudyDependencyError

__all__ = ["study_section"]


def _f(v: Any, digits: int = 2) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    return f"{v:.{digits}f}"


def _bar(dist: dict[str, int]) -> str:
    """The answer distribution as a small stacked SVG bar (red -2 ... green +2)."""
    colours = ["#c0392b", "#e59866", "#bdc3c7", "#82e0aa", "#1e8449"]
    total = sum(dist.values()) or 1
    x, parts = 0.0, []
    for (score, label), col in zip(SCALE, colours):
        w = 160 * dist.get(str(score), 0) / total
        if w > 0:
            parts.append(
                f'<rect x="{x:.1f}" y="0" width="{w:.1f}" height="12" fill="{col}">'
                f"<title>{score:+d} {html.escape(label)}: {dist.get(str(score), 0)}</title></rect>"
            )
        x += w
    return f'<svg xmlns="http://www.w3.org/2000/svg" width="160" height="12">{"".join(parts)}</svg>'


def _table(rows: list[dict[str, Any]], key: str) -> str:
    head = "".join(f"<th>{s:+d}</th>" if s else "<th>0</th>" for s, _ in SCALE)
    out = [
        f"<table><tr><th>{html.escape(key)}</th><th>answers</th><th>items</th><th>mean</th><th>95% CI</th>"
        f"{head}<th>distribution</th></tr>"
    ]
    for g in rows:
        ci = format_interval(g, digits=2)
        ci = "–" if ci == "-" else html.escape(ci)
        if g.get("ci_method") == "point":
            ci += " (all equal)"
        counts = "".join(f"<td>{g['distribution'][str(s)]}</td>" for s, _ in SCALE)
        out.append(
            f"<tr><td>{html.escape(g['group'])}</td><td>{g['n_answers']}</td><td>{g['n_items']}</td>"
            f"<td>{_f(g['mean'])}</td><td>{ci}</td>{counts}<td>{_bar(g['distribution'])}</td></tr>"
        )
    out.append("</table>")
    out.append(
        "<p class='note'>95% CI: BCa bootstrap interval (scipy.stats.bootstrap) of the mean over items "
        f"(item = mean over its raters), clipped to [-2, 2]; {SMALL_N_NOTE} is flagged.</p>"
    )
    return "".join(out)


def study_section(db: str | Path) -> str:
    """HTML of every study in ``db`` (read-only), or ``""`` when there is none."""
    from removalx.experiments.study.db import StudyDB
    from removalx.experiments.study.results import study_results

    sdb = StudyDB(db, read_only=True)
    try:
        names = sdb.names()
        if not names:
            return ""
        parts = ["<h2>User study</h2>"]
        for name in names:
            items = sdb.items(name)
            answers = sdb.answers(name)
            raters = [r["rater"] for r in sdb.raters(name)]
            parts.append(
                f"<h3>{html.escape(name)} <span class='note'>({len(items)} items, {len(raters)} raters, "
                f"{len(answers)} answers; -2 strongly disagree … +2 strongly agree)</span></h3>"
            )
            if not answers:
                parts.append("<p class='note'>No answers yet.</p>")
                continue
            try:
                res = study_results(items, answers, raters)
            except StudyDependencyError as exc:
                parts.append(f"<p class='note'>{html.escape(str(exc))}</p>")
                continue
            parts.append(_table(res["groups"]["method"], "method"))
            if len(res["groups"]["model"]) > 1:
                parts.append(_table(res["groups"]["model"], "model"))
            ag = res["agreement"]
            parts.append(
                f"<p>Krippendorff's α (ordinal): <b>{_f(res['alpha_ordinal'], 3)}</b>; pairwise agreement: "
                f"exact {_f(ag['exact'], 3)}, within one step {_f(ag['within_one'], 3)}.</p>"
            )
        return "".join(parts)
    finally:
        sdb.close()
