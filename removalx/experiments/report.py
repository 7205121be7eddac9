"""A static, self-contained HTML report of a results database.

One page, no network: inline CSS, inline SVG charts (bar plots of every metric with 95% CI
error bars, mean insertion / deletion curves), and GIFs embedded as base64 data URIs (each
video next to the overlay of every method, side by side). Sections follow the experiments
recorded by ``evaluate`` / ``compare`` / ``ablate``; ``compare`` adds the reliability alpha
of every AUC metric (STEP journal Eq. 20-21), ``ablate`` the paired tests.
"""

from __future__ import annotations

import base64
import html
import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from removalx.atomic import write_bytes
from removalx.experiments.runner import RANDOM, aggregate, alpha_table, paired_table
from removalx.experiments.store import Store
from removalx.experiments.study.report import study_section

__all__ = ["write_report"]

PALETTE = [
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
]

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1200px;color:#222;
padding:0 1em}
h1{font-size:1.6em}h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:2em}h3{margin-top:1.4em}
table{border-collapse:collapse;margin:1em 0;font-size:.92em}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:right}th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}
.charts{display:flex;flex-wrap:wrap;gap:1em}.chart{border:1px solid #eee;padding:.4em}
.video{margin:1em 0}.strip{display:inline-block}.strip img{display:block}.video img{image-rendering:pixelated;border:1px solid #ccc;max-width:100%}
.labels{display:flex;font-size:.8em;color:#555}.labels span{text-align:center}
.note{color:#666;font-size:.9em}
"""

SELF_CHECK = """
<script>
window.addEventListener('load', function () {
  var bad = 0, imgs = document.images;
  for (var i = 0; i < imgs.length; i++) { if (!imgs[i].complete || imgs[i].naturalWidth === 0) bad++; }
  document.body.setAttribute('data-images', String(imgs.length));
  document.body.setAttribute('data-broken-images', String(bad));
});
</script>
"""


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return html.escape(str(v))


def _bar_svg(title: str, rows: list[dict[str, Any]], metric: str, width: int = 360, height: int = 220) -> str:
    """Bar plot of the means of ``metric`` per method with 95% CI error bars."""
    vals = [(r["method"], r[metric]) for r in rows if isinstance(r.get(metric), dict)]
    pts = [v for _, s in vals for v in (s["mean"], s["ci_low"], s["ci_high"]) if math.isfinite(v)]
    lo, hi = min([0.0, *pts]), max([0.0, *pts]) or 1.0
    if hi == lo:
        hi = lo + 1.0
    pad_l, pad_b, pad_t = 48, 64, 24
    ph = height - pad_b - pad_t
    bw = (width - pad_l - 10) / max(len(vals), 1)

    def y(v: float) -> float:
        return pad_t + ph * (hi - v) / (hi - lo)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="{html.escape(title)}">',
        f'<text x="{width / 2}" y="14" text-anchor="middle" font-size="12">{html.escape(title)}</text>',
        f'<line x1="{pad_l}" y1="{y(0):.1f}" x2="{width - 5}" y2="{y(0):.1f}" stroke="#999"/>',
        f'<line x1="{pad_l}" y1="{pad_t}" x2="{pad_l}" y2="{pad_t + ph}" stroke="#999"/>',
    ]
    for tick in np.linspace(lo, hi, 5):
        parts.append(
            f'<text x="{pad_l - 4}" y="{y(tick) + 4:.1f}" text-anchor="end" font-size="10">{tick:.3g}</text>'
        )
    for i, (method, s) in enumerate(vals):
        x0 = pad_l + i * bw + bw * 0.15
        col = PALETTE[i % len(PALETTE)]
        if math.isfinite(s["mean"]):
            top, bottom = sorted((y(s["mean"]), y(0)))
            parts.append(
                f'<rect x="{x0:.1f}" y="{top:.1f}" width="{bw * 0.7:.1f}" height="{max(bottom - top, 0.5):.1f}" '
                f'fill="{col}"><title>{html.escape(method)}: {s["mean"]:.4g}</title></rect>'
            )
        if math.isfinite(s["ci_low"]):
            cx = x0 + bw * 0.35
            parts.append(
                f'<line x1="{cx:.1f}" y1="{y(s["ci_low"]):.1f}" x2="{cx:.1f}" y2="{y(s["ci_high"]):.1f}" '
                'stroke="#000" stroke-width="1.5"/>'
            )
            for v in (s["ci_low"], s["ci_high"]):
                parts.append(
                    f'<line x1="{cx - 5:.1f}" y1="{y(v):.1f}" x2="{cx + 5:.1f}" y2="{y(v):.1f}" stroke="#000"/>'
                )
        label = method if len(method) <= 16 else method[:15] + "…"
        lx, ly = x0 + bw * 0.35, height - pad_b + 10
        parts.append(
            f'<text x="{lx:.1f}" y="{ly}" text-anchor="end" font-size="10" '
            f'transform="rotate(-35 {lx:.1f} {ly})">{html.escape(label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _curve_svg(
    title: str, curves: dict[str, list[tuple[list[float], list[float]]]], width: int = 360, height: int = 240
) -> str:
    """Mean curve per method (each curve interpolated on 101 points of x in [0, 1])."""
    grid = np.linspace(0, 1, 101)
    means: dict[str, np.ndarray] = {}
    for method, cs in curves.items():
        ys = [np.interp(grid, np.asarray(x), np.asarray(y)) for x, y in cs]
        means[method] = np.mean(ys, axis=0)
    hi = max([1e-9, *(float(m.max()) for m in means.values())])
    lo = min([0.0, *(float(m.min()) for m in means.values())])
    pad_l, pad_b, pad_t, pad_r = 40, 30, 24, 100
    pw, ph = width - pad_l - pad_r, height - pad_b - pad_t

    def pt(x: float, y: float) -> str:
        return f"{pad_l + pw * x:.1f},{pad_t + ph * (hi - y) / (hi - lo):.1f}"

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="{html.escape(title)}">',
        f'<text x="{(pad_l + width - pad_r) / 2}" y="14" text-anchor="middle" font-size="12">'
        f"{html.escape(title)}</text>",
        f'<rect x="{pad_l}" y="{pad_t}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>',
        f'<text x="{pad_l + pw / 2}" y="{height - 6}" text-anchor="middle" font-size="10">'
        "fraction of pixels perturbed</text>",
        f'<text x="{pad_l - 4}" y="{pad_t + 8}" text-anchor="end" font-size="10">{hi:.2g}</text>',
        f'<text x="{pad_l - 4}" y="{pad_t + ph}" text-anchor="end" font-size="10">{lo:.2g}</text>',
    ]
    for i, (method, m) in enumerate(means.items()):
        col = PALETTE[i % len(PALETTE)]
        parts.append(
            f'<polyline fill="none" stroke="{col}" stroke-width="1.8" '
            f'points="{" ".join(pt(float(x), float(y)) for x, y in zip(grid, m))}"/>'
        )
        parts.append(
            f'<text x="{width - pad_r + 6}" y="{pad_t + 12 + 14 * i}" font-size="10" fill="{col}">'
            f"{html.escape(method[:16])}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _gif_data_uri(frames: torch.Tensor, fps: float = 6) -> str:
    from removalx.io import write_gif

    with tempfile.TemporaryDirectory() as tmp:
        p = write_gif(frames, Path(tmp) / "x.gif", fps=fps)
        return "data:image/gif;base64," + base64.b64encode(p.read_bytes()).decode("ascii")


def _overlay_strip(
    store: Store, dataset: str, item: str, methods: list[str], scale: int
) -> tuple[str, list[str]]:
    """GIF of the clip followed by every method's overlay, as a data URI, and the column labels."""
    from removalx.visualize import render

    v = store.video(dataset, item)
    if v is None:
        return "", []
    video = v["video"]
    tiles, labels = [(video.clamp(0, 1) * 255).round().to(torch.uint8)], ["clip"]
    for method in methods:
        rows = [e for e in store.explanations([method], dataset) if e["item"] == item]
        if not rows:
            continue
        attr = store.attribution(rows[0]["id"])
        vis = (attr.meta.get("recipe") or {}).get("visualization") or {"name": "heatmap"}
        try:
            tiles.append(render(video, attr, vis))
        except Exception:  # a visualizer that is not installed here: fall back to the heat map
            tiles.append(render(video, attr, {"name": "heatmap"}))
        labels.append(method)
    gap = torch.full((*tiles[0].shape[:2], 2, 3), 255, dtype=torch.uint8)
    strip = torch.cat([t for tile in tiles for t in (tile, gap)][:-1], dim=2)
    scale = max(scale, 128 // max(int(video.shape[1]), 1))
    if scale > 1:
        strip = strip.repeat_interleave(scale, 1).repeat_interleave(scale, 2)
    return _gif_data_uri(strip), labels


def _table(rows: list[dict[str, Any]], metrics: list[str]) -> str:
    head = "".join(f"<th>{html.escape(m)}</th>" for m in metrics)
    out = [
        f"<table><thead><tr><th>method</th><th>videos</th>{head}<th>time (s)</th><th>forward passes</th>"
        "</tr></thead><tbody>"
    ]
    for r in rows:
        cells = []
        for m in metrics:
            s = r[m]
            arrow = "" if s.get("higher_is_better") is None else (" ↑" if s["higher_is_better"] else " ↓")
            ci = "" if not math.isfinite(s["ci_low"]) else f" [{s['ci_low']:.3f}, {s['ci_high']:.3f}]"
            cells.append(f"<td title='mean [95% CI]{arrow}'>{_fmt(s['mean'])}{ci}</td>")
        out.append(
            f"<tr><td>{html.escape(r['method'])}</td><td>{r['n_videos']}</td>{''.join(cells)}"
            f"<td>{_fmt(r['time_s'])}</td><td>{_fmt(r['n_forward'], 1)}</td></tr>"
        )
    out.append("</tbody></table>")
    return "".join(out)


def write_report(db: str | Path, out: str | Path, max_videos: int = 6, scale: int = 2) -> Path:
    """Write the HTML report of results database ``db`` to ``out``.

    Parameters
    ----------
    db : str or Path
        A database written by ``evaluate``, ``compare`` or ``ablate``; opened read-only
        (never created or altered).
    out : str or Path
        The HTML file (self-contained: nothing else is written).
    max_videos : int
        Overlay GIFs for at most this many videos per experiment.
    scale : int
        Nearest-neighbour upscaling of the GIFs (small clips are hard to see).
    """
    store = Store(db, read_only=True)
    try:
        exps = store.experiments()
        if not exps:  # a database filled by hand: one section over everything stored
            expl = store.explanations()
            methods = sorted({e["method"] for e in expl})
            metrics = sorted({s["metric"] for s in store.scores()})
            exps = [
                {
                    "name": "all results",
                    "kind": "evaluate",
                    "methods": methods,
                    "metrics": metrics,
                    "dataset": expl[0]["dataset"] if expl else "",
                }
            ]
        body = [
            f"<h1>removalx report</h1><p class='note'>{html.escape(str(db))}: "
            f"{len(store.explanations())} explanations, {len(store.scores())} scores.</p>"
        ]
        for exp in exps:
            body.append(_section(store, exp, max_videos, scale))
        body.append(study_section(db))
    finally:
        store.close()
    page = (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>removalx report</title>"
        f"<style>{CSS}</style></head><body>{''.join(body)}{SELF_CHECK}</body></html>"
    )
    return write_bytes(out, page.encode("utf-8"), "the HTML report")


def _section(store: Store, exp: dict[str, Any], max_videos: int, scale: int) -> str:
    methods, metrics = list(exp["methods"]), list(exp["metrics"])
    rows = aggregate(store, methods, metrics)
    parts = [
        f"<h2>{html.escape(exp['name'])} <span class='note'>({html.escape(exp['kind'])}, "
        f"{html.escape(str(exp.get('dataset', '')))})</span></h2>",
        _table(rows, metrics),
    ]
    if exp["kind"] == "compare" and RANDOM in methods:
        alphas = alpha_table(store, methods, metrics)
        if alphas:
            parts.append(
                "<h3>Metric reliability α (STEP Eq. 20–21)</h3><table><tr><th>metric</th><th>α</th></tr>"
                + "".join(f"<tr><td>{html.escape(k)}</td><td>{_fmt(v)}</td></tr>" for k, v in alphas.items())
                + "</table>"
            )
    if exp["kind"] == "ablate" and len(methods) > 1:
        pt = paired_table(store, methods, metrics)
        parts.append(
            "<h3>Paired tests against the first variant</h3><table><tr><th>variant</th><th>metric</th>"
            "<th>n</th><th>mean diff</th><th>95% CI</th><th>p (t)</th><th>p (Wilcoxon)</th></tr>"
        )
        for r in pt:
            parts.append(
                f"<tr><td>{html.escape(r['variant'])}</td><td>{html.escape(r['metric'])}</td><td>{r['n']}</td>"
                f"<td>{_fmt(r['diff_mean'])}</td><td>{_fmt(r['diff_ci_low'])} – {_fmt(r['diff_ci_high'])}</td>"
                f"<td>{_fmt(r['p_ttest'])}</td><td>{_fmt(r['p_wilcoxon'])}</td></tr>"
            )
        parts.append("</table>")
    parts.append("<h3>Metrics (mean, 95% CI)</h3><div class='charts'>")
    for m in metrics:
        parts.append(f"<div class='chart'>{_bar_svg(m, rows, m)}</div>")
    parts.append("</div>")
    curves: dict[str, dict[str, list[tuple[list[float], list[float]]]]] = {}
    for s in store.scores():
        c = s["details"].get("curve")
        if c and s["method"] in methods and s["metric"] in metrics:
            curves.setdefault(s["metric"], {}).setdefault(s["method"], []).append((c["x"], c["y"]))
    if curves:
        parts.append("<h3>Perturbation curves (mean over videos)</h3><div class='charts'>")
        for metric, by_method in curves.items():
            ordered = {m: by_method[m] for m in methods if m in by_method}
            parts.append(f"<div class='chart'>{_curve_svg(metric, ordered)}</div>")
        parts.append("</div>")
    items: list[str] = []
    for e in store.explanations(methods, exp.get("dataset") or None):
        if e["item"] not in items:
            items.append(e["item"])
    if items:
        parts.append(f"<h3>Overlays (first {min(len(items), max_videos)} of {len(items)} videos)</h3>")
    for item in items[:max_videos]:
        uri, labels = _overlay_strip(store, exp.get("dataset") or "", item, methods, scale)
        if not uri:
            continue
        cols = "".join(f"<span style='flex:1'>{html.escape(lbl)}</span>" for lbl in labels)
        parts.append(
            f"<div class='video'><div><b>{html.escape(item)}</b></div><div class='strip'>"
            f"<div class='labels'>{cols}</div>"
            f"<img alt='{html.escape(item)}: clip and overlays' src='{uri}'></div></div>"
        )
    return "".join(parts)
