"""The KAR / ROAR part of an experiment's report section: curves and a table per metric.

Reads the points :mod:`removalx.experiments.retrain` stored (table ``retrain_curves``); empty
for experiments without remove-and-retrain metrics.
"""

from __future__ import annotations

import html

from removalx.experiments.figures import PALETTE, retrain_curves
from removalx.experiments.report_context import ExperimentView, ReportContext
from removalx.experiments.retrain import curve_rows
from removalx.experiments.runner import RANDOM

__all__ = ["retrain_part"]


def retrain_part(ctx: ReportContext, view: ExperimentView) -> str:
    """Accuracy-after-retraining curves (random map dashed) and their table, per KAR / ROAR metric."""
    rows = curve_rows(ctx.store, str(view.exp["name"]))
    if not rows:
        return ""
    order = [*view.methods, RANDOM]
    colour_of = {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(order)}
    parts = [
        "<h3>Remove and retrain (KAR / ROAR)</h3><p class='note'>Each point: the model's architecture "
        "trained from scratch on training clips whose top-k pixels (by the method's map) were kept (KAR) "
        "or replaced by the training mean (ROAR), tested on the experiment's clips modified alike. "
        "The dashed line is the random map.</p><div class='charts'>"
    ]
    tables = []
    for metric in dict.fromkeys(r["metric"] for r in rows):
        mine = [r for r in rows if r["metric"] == metric]
        mode = mine[0]["mode"]
        points: dict[str, dict[float, float]] = {}
        for m in order:
            pts = {r["fraction"]: r["accuracy"] for r in mine if r["method"] == m}
            if pts:
                points[m] = pts
        fig = retrain_curves(metric, mode, points, colour_of, RANDOM)
        if fig is not None:
            caption = (
                f"{metric}: test accuracy after retraining against k "
                f"({mine[0]['n_train']} training clips, {mine[0]['n_test']} test clips, "
                f"architecture {mine[0]['architecture']})."
            )
            parts.append(ctx.figures.add(fig, f"{view.slug}-{metric}-retrain", caption))
        ks = sorted({r["fraction"] for r in mine})
        head = "".join(f"<th>k = {k:g}</th>" for k in ks)
        body = "".join(
            f"<tr><td>{html.escape(m)}</td>"
            + "".join(f"<td>{pts[k]:.3f}</td>" if k in pts else "<td>–</td>" for k in ks)
            + "</tr>"
            for m, pts in points.items()
        )
        better = "higher" if mode == "kar" else "lower"
        tables.append(
            f"<table><caption>{html.escape(metric)}: test accuracy ({better} is better)</caption>"
            f"<thead><tr><th>method</th>{head}</tr></thead><tbody>{body}</tbody></table>"
        )
    parts.append("</div>")
    parts.extend(tables)
    return "".join(parts)
