"""A static HTML report of a results database, with its figures as PDF and PNG for papers.

One page, no network: inline CSS, charts drawn with matplotlib and inlined as SVG (each also
written as ``FIGURES/NAME.pdf`` and ``.png`` next to the page, ``FIGURES`` = the page's name
+ ``_figures``), and GIFs embedded as base64 data URIs (each video next to the overlay of
every method). Nothing is written unless everything is: the page and its figures folder are
staged and moved into place together.

Structure
---------
The page is the concatenation of :data:`SECTIONS`, each ``section(ctx) -> html`` (``""`` to
leave it out) given a :class:`ReportContext` (the read-only store, the figure sink, the
options). The built-in :func:`experiment_sections` renders one section per experiment
recorded by ``evaluate`` / ``compare`` / ``ablate`` from :data:`EXPERIMENT_PARTS`, each
``part(ctx, view) -> html`` over an :class:`ExperimentView` (the methods x metrics rows
computed once). Adding a section is one line: append your renderer to :data:`SECTIONS` (or
a part to :data:`EXPERIMENT_PARTS`); a chart inside it is ``ctx.figures.add(fig, name,
caption)`` with a figure from :func:`removalx.experiments.figures.new_figure`.

``compare`` adds the reliability alpha of every AUC metric (STEP journal Eq. 20-21) with a
line saying what the value means, ``ablate`` the paired tests.
"""

from __future__ import annotations

import base64
import html
import math
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from removalx.errors import ConfigError, truncate
from removalx.experiments.comparisons_report import (
    display_names,
    paired_charts_part,
    paired_part,
    with_stored_metrics,
)
from removalx.experiments.figures import (
    PALETTE,
    FigureSink,
    figure_name,
    mean_curves,
    metric_bars,
    require_matplotlib,
)
from removalx.experiments.multiplicity import DEFAULT_CORRECTION, check_correction
from removalx.experiments.provenance_report import setup_part, write_bibliography
from removalx.experiments.report_context import ExperimentView, ReportContext
from removalx.experiments.retrain_report import retrain_part
from removalx.experiments.runner import RANDOM, alpha_table
from removalx.experiments.stats import SMALL_N_NOTE, format_interval
from removalx.experiments.store import Store
from removalx.experiments.study.report import study_section
from removalx.files.outputs import StagedOutput

__all__ = [
    "EXPERIMENT_PARTS",
    "GALLERY_SCALES",
    "SECTIONS",
    "ExperimentView",
    "ReportContext",
    "alpha_meaning",
    "write_report",
]

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1200px;color:#222;
padding:0 1em}
h1{font-size:1.6em}h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:2em}h3{margin-top:1.4em}
table{border-collapse:collapse;margin:1em 0;font-size:.92em}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:right}th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}
.charts{display:flex;flex-wrap:wrap;gap:1em;align-items:flex-start}
.chart{border:1px solid #eee;padding:.4em;margin:0}.chart svg{display:block;max-width:100%;height:auto}
figcaption{font-size:.85em;color:#444;max-width:420px}
.video{margin:1em 0}.strip{display:inline-block}.strip img{display:block}.video img{image-rendering:pixelated;border:1px solid #ccc;max-width:100%}
.labels{display:flex;font-size:.8em;color:#555}.labels span{text-align:center;min-width:0;overflow-wrap:anywhere;padding:0 2px}
.note{color:#666;font-size:.9em}.warning{color:#8a4b00;font-weight:600}.meaning{color:#444;font-size:.85em;text-align:left}
.setup{font-size:.85em;text-align:left}.methods{border-left:3px solid #ccc;margin:.5em 0;padding:.3em 1em}
"""

SELF_CHECK = """
<script>
window.addEventListener('load', function () {
  var bad = 0, imgs = document.images;
  for (var i = 0; i < imgs.length; i++) { if (!imgs[i].complete || imgs[i].naturalWidth === 0) bad++; }
  document.body.setAttribute('data-images', String(imgs.length));
  document.body.setAttribute('data-broken-images', String(bad));
  document.body.setAttribute('data-svgs', String(document.getElementsByTagName('svg').length));
});
</script>
"""


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return html.escape(str(v))


def _count(v: Any) -> str:
    """A count as an integer (``201``, not ``201.0``); a mean of counts keeps one decimal."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    f = float(v)
    return str(round(f)) if f == round(f) else f"{f:.1f}"


def alpha_meaning(alpha: float) -> str:
    """One line saying what a reliability ``alpha`` (STEP Eq. 20-21) means.

    alpha is a weighted mean of Spearman correlations between the methods' scores on pairs of
    videos: it says whether the metric ranks the methods the same way from video to video. The
    words for ranges of the value are removalx's, not the paper's (which reports the number only).
    """
    if not math.isfinite(alpha):
        return (
            "undefined: fewer than two videos on which some method beats the random map, so there is "
            "no pair of videos to compare rankings on."
        )
    if alpha >= 0.8:
        word = "strongly consistent"
    elif alpha >= 0.6:
        word = "mostly consistent"
    elif alpha >= 0.4:
        word = "moderately consistent"
    elif alpha >= 0.2:
        word = "weakly consistent"
    elif alpha > -0.2:
        word = "not consistent"
    else:
        word = "reversed from video to video"
    return (
        f"The metric's ranking of the methods is {word} across videos "
        "(1: every video ranks the methods alike; 0: no agreement; below 0: opposite rankings; "
        "videos where the methods beat the random map weigh more). Higher α = a more reliable metric."
    )


def _gif_data_uri(frames: torch.Tensor, fps: float = 6) -> str:
    from removalx.video.io import write_gif

    with tempfile.TemporaryDirectory() as tmp:
        p = write_gif(frames, Path(tmp) / "x.gif", fps=fps)
        return "data:image/gif;base64," + base64.b64encode(p.read_bytes()).decode("ascii")


#: Choices of ``removalx report --gallery-scale``: one colour scale per kind of map across the
#: methods of a strip (default), or each map stretched to its own range.
GALLERY_SCALES = ("shared", "per-method")
#: An overlay column with its own colour bar is at least this wide (pixels), so the ticks fit.
BAR_MIN_WIDTH = 160
#: Pixels of white between the columns of a strip.
GAP = 4
#: On a shared scale, a map whose values span less than this fraction of it is flagged as faint.
FAINT = 0.05


@dataclass
class OverlayStrip:
    """One video's row of the gallery: a GIF (data URI), its column labels, widths and notes."""

    uri: str = ""
    labels: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    shared_bar: bool = False
    widths: list[int] = field(default_factory=list)


def is_baseline(method: str) -> bool:
    """Whether ``method`` is a baseline (the ``random`` maps of ``compare``), kept off shared scales.

    A random map spreads over a range unrelated to the methods' (N(0, 1) values against a
    saliency map's few hundredths): on one scale with it, every method's overlay is one flat
    colour. Baselines get their own scale, labelled, after the methods.
    """
    return method == RANDOM


def _same_scale(a: Any, b: Any) -> bool:
    """Whether two colour bars draw the same colours at the same values."""
    return (
        (a.low, a.high, a.signed, a.note) == (b.low, b.high, b.signed, b.note)
        and torch.equal(a.colors, b.colors)
        and torch.equal(a.alpha, b.alpha)
    )


def _pad(frames: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """``frames`` padded with white at the bottom and right to ``h x w``."""
    t, fh, fw, _ = frames.shape
    out = torch.full((t, h, w, 3), 255, dtype=torch.uint8)
    out[:, :fh, :fw] = frames
    return out


def _hcat(cols: list[torch.Tensor]) -> torch.Tensor:
    h = max(int(c.shape[1]) for c in cols)
    cols = [_pad(c, h, int(c.shape[2])) for c in cols]
    gap = torch.full((*cols[0].shape[:2], GAP, 3), 255, dtype=torch.uint8)
    return torch.cat([t for col in cols for t in (col, gap)][:-1], dim=2)


def _shown(store: Store, dataset: str, item: str, methods: list[str], video: torch.Tensor) -> list[Any]:
    """``(method, attribution at the clip's size, visualization)`` of every stored method, baselines last."""
    from removalx.display.visualize import legend_of, upsample

    shown: list[tuple[str, Any, dict[str, Any]]] = []
    for method in sorted(methods, key=is_baseline):
        rows = [e for e in store.explanations([method], dataset) if e["item"] == item]
        if not rows:
            continue
        attr = upsample(store.attribution(rows[0]["id"]), tuple(video.shape[1:3]))
        vis = dict((attr.meta.get("recipe") or {}).get("visualization") or {"name": "heatmap"})
        try:
            legend_of(attr, vis)
        except Exception:  # a visualizer that is not installed here: fall back to the heat map
            vis = {"name": "heatmap"}
        shown.append((method, attr, vis))
    return shown


def _faint_notes(shown: list[Any], scales: list[Any], own: list[bool]) -> list[str]:
    """A note for every method whose values span under :data:`FAINT` of its shared scale."""
    from removalx.display.visualize import comparable_scales

    notes = []
    for (method, a, c), s, alone in zip(shown, scales, own, strict=True):
        others = sum(1 for o in own if not o) - 1
        own_range = comparable_scales([a], [c])[0]
        if alone or s is None or own_range is None or others < 1:
            continue
        if own_range[1] - own_range[0] < FAINT * (s[1] - s[0]):
            notes.append(
                f"{method}: its values span under {FAINT:.0%} of the shared scale, so its overlay looks "
                "nearly uniform; --gallery-scale per-method stretches each map to its own range."
            )
    return notes


def _overlay_strip(
    store: Store, dataset: str, item: str, methods: list[str], scale: int, gallery_scale: str = "shared"
) -> OverlayStrip:
    """The clip followed by every method's overlay, one GIF, with colour bars under the overlays.

    ``gallery_scale="shared"``: maps of one kind (same visualization, both signed or both
    unsigned, :func:`~removalx.display.visualize.comparable_scales`) share one colour scale, drawn
    once under the methods when every method's overlay has the same bar; baselines
    (:func:`is_baseline`, the random maps) come last, each on its own scale with its own bar
    labelled so. ``"per-method"``: each map is stretched to its own range. Without a shared bar,
    each overlay has its own.
    """
    from dataclasses import replace

    from removalx.display.colorbar import colorbar_strip, with_colorbar
    from removalx.display.visualize import comparable_scales, legend_of, render

    v = store.video(dataset, item)
    if v is None:
        return OverlayStrip()
    video = v["video"].float()
    shown = _shown(store, dataset, item, methods, video)
    attrs, visos = [a for _, a, _ in shown], [c for _, _, c in shown]
    own = [is_baseline(m) for m, _, _ in shown]
    scales = comparable_scales(attrs, visos, own=own) if gallery_scale == "shared" else [None] * len(shown)
    factor = max(scale, 128 // max(int(video.shape[1]), 1))

    def up(t: torch.Tensor) -> torch.Tensor:
        return t.repeat_interleave(factor, 1).repeat_interleave(factor, 2) if factor > 1 else t

    clip = up((video[..., :3].clamp(0, 1) * 255).round().to(torch.uint8))
    overlays = [up(render(video, a, c, scale=s)) for a, c, s in zip(attrs, visos, scales, strict=True)]
    legends = [legend_of(a, c, scale=s) for a, c, s in zip(attrs, visos, scales, strict=True)]
    legends = [
        replace(lg, label=f"{m}: baseline, own scale") if alone and lg is not None else lg
        for (m, _, _), lg, alone in zip(shown, legends, own, strict=True)
    ]
    n_methods = own.count(False)
    span = n_methods * clip.shape[2] + (n_methods - 1) * GAP
    first = legends[0] if n_methods else None
    shared_bar = (
        n_methods > 1
        and span >= BAR_MIN_WIDTH
        and first is not None
        and all(lg is not None and _same_scale(first, lg) for lg in legends[:n_methods])
    )
    if shared_bar:
        assert first is not None
        bar = colorbar_strip(replace(first, label="attribution, one scale for every method"), span)
        block = _hcat([clip, *overlays[:n_methods]])
        row = torch.full((bar.shape[0], block.shape[2], 3), 255, dtype=torch.uint8)
        row[:, -span:] = torch.from_numpy(bar)
        block = torch.cat([block, row[None].expand(block.shape[0], -1, -1, -1)], dim=1)
        rest = [
            with_colorbar(o, lg, min_width=BAR_MIN_WIDTH) for o, lg in zip(overlays, legends, strict=True)
        ]
        cols = [block, *rest[n_methods:]]
        widths = [int(clip.shape[2])] * (n_methods + 1) + [int(c.shape[2]) for c in rest[n_methods:]]
    else:
        cols = [clip] + [
            with_colorbar(o, lg, min_width=BAR_MIN_WIDTH) for o, lg in zip(overlays, legends, strict=True)
        ]
        h, w = max(c.shape[1] for c in cols), max(c.shape[2] for c in cols)
        cols = [_pad(c, h, w) for c in cols]
        widths = [int(w)] * len(cols)
    labels = ["clip"] + [
        f"{m} (baseline, own scale)" if o else m for (m, _, _), o in zip(shown, own, strict=True)
    ]
    notes = _faint_notes(shown, scales, own)
    return OverlayStrip(_gif_data_uri(_hcat(cols)), labels, notes, bool(shared_bar), widths)


def _table(view: ExperimentView) -> str:
    metrics, rows = view.metrics, view.rows
    names = display_names(view.store, view.exp)  # the method's display name, its label as tooltip
    head = "".join(f"<th>{html.escape(m)}{_arrow(rows, m)}</th>" for m in metrics)
    out = [
        f"<table><thead><tr><th>method</th><th>videos</th>{head}<th>time (s)</th><th>forward passes</th><th>backward passes</th>"
        "</tr></thead><tbody>"
    ]
    for r in rows:
        cells = []
        for m in metrics:
            s = r[m]
            ci = format_interval(s)
            ci = "" if ci == "-" else f" {html.escape(ci)}"
            label = html.escape(str(s.get("ci_label", "95% bootstrap CI")))
            cells.append(f"<td title='mean [{label}]'>{_fmt(s['mean'])}{ci}</td>")
        shown = names.get(r["method"], r["method"])
        title = f" title='{html.escape(r['method'])}'" if r["method"] in names else ""
        out.append(
            f"<tr><td{title}>{html.escape(shown)}</td><td>{_count(r['n_videos'])}</td>{''.join(cells)}"
            f"<td>{_fmt(r['time_s'])}</td><td>{_count(r['n_forward'])}</td><td>{_count(r['n_backward'])}</td></tr>"
        )
    out.append("</tbody></table>")
    out.append(
        "<p class='note'>Mean over videos [95% BCa bootstrap confidence interval (scipy.stats.bootstrap), "
        f"clipped to the metric's range; {SMALL_N_NOTE} is flagged]; ↑ higher is better, "
        "↓ lower is better.</p>"
    )
    return "".join(out)


def _arrow(rows: list[dict[str, Any]], metric: str) -> str:
    hib = next(
        (r[metric].get("higher_is_better") for r in rows if r[metric].get("higher_is_better") is not None),
        None,
    )
    if hib is None:
        return ""
    return " <span title='higher is better'>↑</span>" if hib else " <span title='lower is better'>↓</span>"


# -- the parts of an experiment's section ------------------------------------------------------
def summary_part(ctx: ReportContext, view: ExperimentView) -> str:
    """Heading and the methods x metrics table."""
    exp = view.exp
    return (
        f"<h2>{html.escape(exp['name'])} <span class='note'>({html.escape(exp['kind'])}, "
        f"{html.escape(str(exp.get('dataset', '')))})</span></h2>" + _table(view)
    )


def reliability_part(ctx: ReportContext, view: ExperimentView) -> str:
    """``compare``: the alpha of every AUC metric, each with a line saying what it means."""
    if view.exp["kind"] != "compare" or RANDOM not in view.methods:
        return ""
    alphas = alpha_table(ctx.store, view.methods, view.metrics, scope=view.scope)
    if not alphas:
        return ""
    rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{_fmt(v)}</td><td class='meaning'>{html.escape(alpha_meaning(v))}</td></tr>"
        for k, v in alphas.items()
    )
    return (
        "<h3>Metric reliability α (STEP journal, Sec. IV-B, Eq. 20–21)</h3>"
        "<p class='note'>Does the metric rank the methods (random maps included) the same way on every "
        "video? α in [−1, 1].</p>"
        f"<table><tr><th>metric</th><th>α</th><th class='meaning'>what it means</th></tr>{rows}</table>"
    )


def metric_charts_part(ctx: ReportContext, view: ExperimentView) -> str:
    """One bar chart per metric: mean and 95% bootstrap CI per method (``<experiment>-<metric>-means``)."""
    charts = []
    names = display_names(ctx.store, view.exp)
    for m in view.metrics:
        fig = metric_bars(m, view.rows, names)
        if fig is not None:
            charts.append(
                ctx.figures.add(
                    fig, figure_name(view.exp["name"], m, "means"), f"{m}: mean per method, 95% bootstrap CI."
                )
            )
    if not charts:
        return ""
    return "<h3>Metrics (mean, 95% CI)</h3><div class='charts'>" + "".join(charts) + "</div>"


def curve_charts_part(ctx: ReportContext, view: ExperimentView) -> str:
    """Mean insertion / deletion curve per method (metrics whose scores carry a curve)."""
    curves: dict[str, dict[str, list[tuple[list[float], list[float]]]]] = {}
    orient: dict[str, bool | None] = {}
    for s in ctx.store.scores():
        c = s["details"].get("curve")
        if c and s["method"] in view.methods and s["metric"] in view.metrics:
            curves.setdefault(s["metric"], {}).setdefault(s["method"], []).append((c["x"], c["y"]))
            orient.setdefault(s["metric"], s["details"].get("higher_is_better"))
    colour_of = {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(view.methods)}
    charts = []
    for metric, by_method in curves.items():
        ordered = {m: by_method[m] for m in view.methods if m in by_method}
        fig = mean_curves(metric, ordered, orient.get(metric), colour_of, display_names(ctx.store, view.exp))
        if fig is not None:
            charts.append(
                ctx.figures.add(
                    fig,
                    figure_name(view.exp["name"], metric, "curves"),
                    f"{metric}: mean perturbation curve per method.",
                )
            )
    if not charts:
        return ""
    return "<h3>Perturbation curves (mean over videos)</h3><div class='charts'>" + "".join(charts) + "</div>"


def _scale_note(gallery_scale: str) -> str:
    if gallery_scale == "per-method":
        return (
            "Each overlay is stretched to its own range (--gallery-scale per-method): compare where a "
            "method puts its importance, not how much; each overlay's colour bar gives its values."
        )
    return (
        "Maps of one kind (same visualization; signed maps on a diverging colour map centred at 0, "
        "unsigned ones on a sequential map) share one colour scale in a row, so equal values get equal "
        "colours; the bar under the row (or under each overlay when the kinds differ) gives the values."
    )


def overlays_part(ctx: ReportContext, view: ExperimentView) -> str:
    """For the first videos, one GIF each: the clip next to every method's overlay."""
    items: list[str] = []
    for e in ctx.store.explanations(view.methods, view.exp.get("dataset") or None):
        if e["item"] not in items:
            items.append(e["item"])
    if not items:
        return ""
    parts = [
        f"<h3>Overlays (first {min(len(items), ctx.max_videos)} of {len(items)} videos)</h3>"
        f"<p class='note'>{html.escape(_scale_note(ctx.gallery_scale))}</p>"
    ]
    for item in items[: ctx.max_videos]:
        strip = _overlay_strip(
            ctx.store, view.exp.get("dataset") or "", item, view.methods, ctx.scale, ctx.gallery_scale
        )
        if not strip.uri:
            continue
        cols = "".join(
            f"<span style='flex:{w + GAP} 1 0'>{html.escape(lbl)}</span>"
            for lbl, w in zip(strip.labels, strip.widths, strict=True)
        )
        notes = "".join(f"<p class='note'>{html.escape(n)}</p>" for n in strip.notes)
        parts.append(
            f"<div class='video'><div><b>{html.escape(item)}</b></div><div class='strip'>"
            f"<div class='labels'>{cols}</div>"
            f"<img alt='{html.escape(item)}: clip and overlays' src='{strip.uri}'></div>{notes}</div>"
        )
    return "".join(parts)


#: The parts of every experiment's section, in order: ``part(ctx, view) -> html`` ("" to skip).
EXPERIMENT_PARTS: list[Callable[[ReportContext, ExperimentView], str]] = [
    summary_part,
    setup_part,
    reliability_part,
    paired_part,
    paired_charts_part,
    metric_charts_part,
    curve_charts_part,
    retrain_part,
    overlays_part,
]


def experiment_sections(ctx: ReportContext) -> str:
    """One section per experiment, built from :data:`EXPERIMENT_PARTS`."""
    out: list[str] = []
    for stored in ctx.experiments:
        exp, note = with_stored_metrics(ctx.store, stored)  # nothing stored vanishes unsaid
        view = ExperimentView(exp, ctx.store)
        parts = [part(ctx, view) for part in EXPERIMENT_PARTS]
        if note:
            parts.insert(1, f"<p class='note'>{html.escape(note)}</p>")
        out.extend(parts)
    return "".join(out)


def user_study_sections(ctx: ReportContext) -> str:
    """The "User study" section: every rating study stored in the database (``removalx study``)."""
    return study_section(ctx.store.path)


#: The sections of the page after its heading, in order: ``section(ctx) -> html`` ("" to skip).
#: A new section (a user study, KAR / ROAR curves ...) is one more entry here.
SECTIONS: list[Callable[[ReportContext], str]] = [
    experiment_sections,
    user_study_sections,
]


def _experiments(store: Store) -> list[dict[str, Any]]:
    exps = store.experiments()
    if exps:
        return exps
    # A database filled by hand: one section over everything stored.
    expl = store.explanations()
    return [
        {
            "name": "all results",
            "kind": "evaluate",
            "methods": sorted({e["method"] for e in expl}),
            "metrics": sorted({s["metric"] for s in store.scores()}),
            "dataset": expl[0]["dataset"] if expl else "",
        }
    ]


def figures_dir(out: str | Path) -> Path:
    """The folder of the report ``out``'s PDF / PNG figures: ``<out stem>_figures`` beside it."""
    p = Path(out)
    return p.with_name(f"{p.stem}_figures")


def write_report(
    db: str | Path,
    out: str | Path,
    max_videos: int = 6,
    scale: int = 2,
    gallery_scale: str = "shared",
    correction: str = DEFAULT_CORRECTION,
) -> Path:
    """Write the HTML report of results database ``db`` to ``out`` and its figures beside it.

    Parameters
    ----------
    db : str or Path
        A database written by ``evaluate``, ``compare`` or ``ablate``; opened read-only
        (never created or altered).
    out : str or Path
        The HTML file (self-contained: charts inline as SVG, GIFs as data URIs). Every chart
        is also written as PDF and PNG into :func:`figures_dir` (``<stem>_figures/``).
    max_videos : int
        Overlay GIFs for at most this many videos per experiment.
    scale : int
        Nearest-neighbour upscaling of the GIFs (small clips are hard to see).
    gallery_scale : {"shared", "per-method"}
        Colour scale of the overlays side by side: ``"shared"`` (one scale for the maps of one
        kind in a strip, :func:`~removalx.display.visualize.comparable_scales`) or ``"per-method"``
        (each map stretched to its own range).
    correction : {"holm", "bh", "none"}
        p-value correction across the paired tests of each ``ablate`` experiment
        (:mod:`removalx.experiments.multiplicity`); the report names it and shows raw and
        adjusted p.

    Raises
    ------
    ConfigError
        ``gallery_scale`` is not one of :data:`GALLERY_SCALES`, or ``correction`` not one of
        :data:`~removalx.experiments.multiplicity.CORRECTIONS`.
    MissingExtraError
        matplotlib (the ``report`` extra) is not installed.
    StorageError
        ``db`` is missing, damaged or not a results database.
    """
    check_correction(correction)
    if gallery_scale not in GALLERY_SCALES:
        raise ConfigError(
            f"Unknown gallery scale {truncate(str(gallery_scale), 40)!r}.",
            f"Use one of {', '.join(GALLERY_SCALES)}.",
        )
    require_matplotlib()
    out = Path(out)
    fig_dir = figures_dir(out)
    store = Store(db, read_only=True)
    try:
        with StagedOutput(out.parent) as stage:
            ctx = ReportContext(
                store=store,
                figures=FigureSink(stage.path / fig_dir.name, fig_dir.name),
                experiments=_experiments(store),
                max_videos=max_videos,
                scale=scale,
                gallery_scale=gallery_scale,
                correction=correction,
            )
            body = [
                f"<h1>removalx report</h1><p class='note'>{html.escape(str(db))}: "
                f"{len(store.explanations())} explanations, {len(store.scores())} scores. "
                f"Figures as PDF and PNG: <a href='{html.escape(fig_dir.name)}/'>"
                f"{html.escape(fig_dir.name)}/</a>.</p>"
            ]
            body.extend(section(ctx) for section in SECTIONS)
            page = (
                "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>removalx report</title>"
                f"<style>{CSS}</style></head><body>{''.join(body)}{SELF_CHECK}</body></html>"
            )
            (stage.path / out.name).write_bytes(page.encode("utf-8"))
            write_bibliography(ctx, stage.path)  # references.bib: the papers behind every experiment
    finally:
        store.close()
    return out
