"""The report's charts, drawn with matplotlib: SVG inline in the HTML, PDF and PNG for papers.

:class:`FigureSink` turns a matplotlib figure into an HTML ``<figure>`` (the SVG inline, text
kept as text) and writes ``NAME.pdf`` / ``NAME.png`` into the report's figures folder; a name
is :func:`figure_name`: experiment, metric and kind of chart
(``ablate-lime3d-removal.name-constant-b-3f2a1c-deletion-means.png``).
:func:`metric_bars`, :func:`paired_diffs` and :func:`mean_curves` are the built-in charts; a
method is labelled by its display name when it has one, else by its label wrapped onto lines
(:func:`method_label`). A new chart is a function that builds a
:class:`matplotlib.figure.Figure` (use :func:`new_figure`) and hands it to
``sink.add(fig, name, caption)``.

matplotlib is the ``report`` extra (``pip install removalx[report]``); :func:`require_matplotlib`
raises :class:`~removalx.errors.MissingExtraError` without it.
"""

from __future__ import annotations

import hashlib
import io
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from removalx.errors import MissingExtraError
from removalx.files.atomic import write_bytes

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "FigureSink",
    "experiment_slug",
    "figure_name",
    "mean_curves",
    "method_label",
    "metric_bars",
    "new_figure",
    "orientation_label",
    "paired_diffs",
    "require_matplotlib",
    "wrap_label",
]

#: Colour of the ``i``-th method (matplotlib's colour-blind-aware "tab10" cycle, one colour per
#: method across every chart of a report).
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

#: matplotlib settings of every report figure: text stays text in the SVG (searchable, sharp),
#: TrueType fonts in the PDF (editable in a paper's figure), no timestamps (same bytes per run).
RC: dict[Any, Any] = {
    "svg.fonttype": "none",
    "svg.hashsalt": "removalx",
    "pdf.fonttype": 42,
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
}
PNG_DPI = 200


def require_matplotlib() -> None:
    """Raise :class:`MissingExtraError` naming the ``report`` extra when matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise MissingExtraError(
            "The HTML report draws its charts with matplotlib, which is not installed.",
            "pip install 'removalx[report]' (or pip install matplotlib).",
        ) from exc


def new_figure(width: float = 4.2, height: float = 2.8) -> Figure:
    """A figure of ``width`` x ``height`` inches, not registered with pyplot (no global state)."""
    require_matplotlib()
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def orientation_label(higher_is_better: bool | None) -> str:
    """``"↑ higher is better"``, ``"↓ lower is better"`` or ``""`` (orientation unknown)."""
    if higher_is_better is None:
        return ""
    return "↑ higher is better" if higher_is_better else "↓ lower is better"


def _slug(text: str, n: int = 160) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:n].strip("-") or "figure"


#: Characters of an experiment's name kept in its figures' file names (then a short hash).
EXPERIMENT_CHARS = 36


def experiment_slug(name: str) -> str:
    """The experiment part of a figure's file name: the name as a slug, shortened with a hash.

    A name longer than :data:`EXPERIMENT_CHARS` characters (as a slug) is cut and followed by
    the first 6 hex digits of its sha1, so two experiments never share a file and the metric and
    kind that follow stay in the name.
    """
    full = _slug(str(name), 10_000)
    if len(full) <= EXPERIMENT_CHARS:
        return full
    digest = hashlib.sha1(str(name).encode("utf-8")).hexdigest()[:6]
    return f"{full[:EXPERIMENT_CHARS].rstrip('-._')}-{digest}"


def figure_name(experiment: str, metric: str, kind: str) -> str:
    """``<experiment>-<metric>-<kind>``: what a figure's files are called (without extension)."""
    return f"{experiment_slug(experiment)}-{_slug(metric, 60)}-{_slug(kind, 30)}"


#: Characters per line of a method label on a chart's axis or legend.
LABEL_WIDTH = 24
#: Lines of a wrapped label at most (the last ends with an ellipsis when cut).
LABEL_LINES = 3


def wrap_label(label: str, width: int = LABEL_WIDTH, lines: int = LABEL_LINES) -> str:
    """``label`` on lines of at most ``width`` characters, broken after ``[ , = ; /`` or spaces.

    A recipe label such as ``lime3d[removal.name=constant,removal.sigma=2]`` has no spaces;
    it breaks after its brackets, commas and equals signs, a part longer than ``width`` is
    cut hard. Beyond ``lines`` lines the last ends with ``…``.
    """
    parts = [p for p in re.split(r"(?<=[\[,=;/ ])", str(label)) if p]
    pieces = [p[i : i + width] for p in parts for i in range(0, len(p), width)]
    out: list[str] = []
    for piece in pieces:
        if out and len(out[-1]) + len(piece) <= width:
            out[-1] += piece
        else:
            out.append(piece)
    out = [line.strip() for line in out]
    if len(out) > lines:
        out = out[:lines]
        out[-1] = out[-1][: width - 1] + "…"
    return "\n".join(out)


def method_label(method: str, names: Mapping[str, str] | None = None) -> str:
    """A method's label on a chart: its display name if ``names`` has one, else :func:`wrap_label`."""
    shown = (names or {}).get(method)
    return wrap_label(shown if shown else method)


class FigureSink:
    """Collects a report's figures: inline SVG for the page, PDF and PNG files in ``folder``.

    Parameters
    ----------
    folder : Path
        Where ``NAME.pdf`` and ``NAME.png`` are written (created on the first figure).
    href : str
        How the page links to ``folder`` (relative to the HTML file).
    """

    def __init__(self, folder: Path, href: str) -> None:
        self.folder = folder
        self.href = href.rstrip("/")
        self.names: list[str] = []

    def add(self, fig: Figure, name: str, caption: str = "") -> str:
        """Save ``fig`` as ``name``.pdf/.png; return an HTML ``<figure>`` with the SVG inline."""
        import html

        from matplotlib import rc_context

        stem = _slug(name)
        while stem in self.names:  # two figures never share a file
            stem += "-2"
        self.names.append(stem)
        self.folder.mkdir(parents=True, exist_ok=True)
        with rc_context(RC):
            svg = _render(fig, "svg", metadata={"Date": None}).decode("utf-8")
            pdf = _render(fig, "pdf", metadata={"CreationDate": None, "ModDate": None})
            png = _render(fig, "png", dpi=PNG_DPI)
        write_bytes(self.folder / f"{stem}.pdf", pdf, "a report figure")
        write_bytes(self.folder / f"{stem}.png", png, "a report figure")
        svg = svg[svg.index("<svg") :]  # drop the XML declaration and DOCTYPE: inline in HTML
        links = (
            f"<a href='{html.escape(self.href)}/{stem}.pdf'>PDF</a> · "
            f"<a href='{html.escape(self.href)}/{stem}.png'>PNG</a>"
        )
        cap = f"{html.escape(caption)} " if caption else ""
        return f"<figure class='chart'>{svg}<figcaption>{cap}<span class='note'>{links}</span></figcaption></figure>"


def _render(fig: Figure, fmt: str, **kwargs: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, **kwargs)
    return buf.getvalue()


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def _label_height(labels: Sequence[str]) -> float:
    """Inches a row of a horizontal chart needs for its (wrapped) label."""
    return 0.32 * max([1, *(label.count("\n") + 1 for label in labels)]) ** 0.8


def metric_bars(
    metric: str, rows: Sequence[dict[str, Any]], names: Mapping[str, str] | None = None
) -> Figure | None:
    """Horizontal bars: the mean of ``metric`` per method with its 95% CI (``None`` if no value).

    ``rows`` are :func:`removalx.experiments.runner.aggregate` rows; the title carries the
    metric's orientation, the x axis what is plotted and how many videos. Methods are labelled
    by :func:`method_label` (``names``: display names).
    """
    vals = [(r["method"], r[metric]) for r in rows if isinstance(r.get(metric), dict)]
    vals = [(m, s) for m, s in vals if _finite(s.get("mean"))]
    if not vals:
        return None
    labels = [method_label(m, names) for m, _ in vals]
    with _rc():
        fig = new_figure(4.2, 0.9 + _label_height(labels) * len(vals))
        ax = fig.add_subplot()
        ys = np.arange(len(vals))[::-1]
        means = np.array([s["mean"] for _, s in vals], dtype=float)
        lo = np.array([s["ci_low"] if _finite(s.get("ci_low")) else s["mean"] for _, s in vals], dtype=float)
        hi = np.array(
            [s["ci_high"] if _finite(s.get("ci_high")) else s["mean"] for _, s in vals], dtype=float
        )
        colours = [PALETTE[i % len(PALETTE)] for i in range(len(vals))]
        ax.barh(ys, means, color=colours, height=0.6)
        ax.errorbar(
            means, ys, xerr=np.vstack([means - lo, hi - means]), fmt="none", ecolor="#222", capsize=3, lw=1
        )
        ax.set_yticks(ys, labels)
        ax.axvline(0, color="#888", lw=0.8)
        ax.locator_params(axis="x", nbins=5)
        hib = next(
            (s.get("higher_is_better") for _, s in vals if s.get("higher_is_better") is not None), None
        )
        n = max(int(s.get("n") or 0) for _, s in vals)
        what = "pooled hit rate" if any(s.get("pooling") for _, s in vals) else "mean"
        ax.set_xlabel(f"{what} of {n} video{'s' if n != 1 else ''}, 95% bootstrap CI")
        ax.set_title(metric if hib is None else f"{metric}   {orientation_label(hib)}", loc="left")
    return fig


def mean_curves(
    metric: str,
    curves: dict[str, list[tuple[list[float], list[float]]]],
    higher_is_better: bool | None,
    colour_of: dict[str, str] | None = None,
    names: Mapping[str, str] | None = None,
) -> Figure | None:
    """Mean perturbation curve per method, each curve interpolated on 101 points of x in [0, 1].

    The legend labels methods by :func:`method_label` (``names``: display names).
    """
    grid = np.linspace(0, 1, 101)
    means = {
        m: np.mean([np.interp(grid, np.asarray(x, float), np.asarray(y, float)) for x, y in cs], axis=0)
        for m, cs in curves.items()
        if cs
    }
    if not means:
        return None
    with _rc():
        rows = math.ceil(len(means) / (2 if len(means) > 2 else 1))
        fig = new_figure(4.2, 2.8 + 0.3 * rows)
        ax = fig.add_subplot()
        for i, (method, m) in enumerate(means.items()):
            col = (colour_of or {}).get(method, PALETTE[i % len(PALETTE)])
            n = len(curves[method])
            ax.plot(grid, m, color=col, lw=1.6, label=f"{method_label(method, names)} (n={n})")
        ax.set_xlim(0, 1)
        ax.set_xlabel("fraction of the clip perturbed")
        ax.set_ylabel("score of the explained class")
        ax.locator_params(axis="x", nbins=5)
        ax.locator_params(axis="y", nbins=5)
        area = "" if higher_is_better is None else f"   area {orientation_label(higher_is_better)}"
        ax.set_title(f"{metric}{area}", loc="left")
        # below the axes: long or many labels never cover the curves
        fig.legend(frameon=False, loc="outside lower center", ncols=2 if len(means) > 2 else 1)
    return fig


def _rc() -> Any:
    require_matplotlib()
    from matplotlib import rc_context

    return rc_context(RC)


def retrain_curves(
    metric: str,
    mode: str,
    points: dict[str, dict[float, float]],
    colour_of: dict[str, str] | None = None,
    random_label: str = "random",
) -> Figure | None:
    """Test accuracy after retraining against the fraction ``k`` per method (KAR / ROAR).

    Parameters
    ----------
    metric : str
        The metric's label (title).
    mode : {"kar", "roar"}
        KAR (``k`` = share kept, higher is better) or ROAR (``k`` = share removed, lower is better).
    points : dict
        ``{method: {k: accuracy}}``; the random reference line is drawn dashed.
    """
    if not points:
        return None
    with _rc():
        fig = new_figure(4.2, 2.8)
        ax = fig.add_subplot()
        for i, (method, pts) in enumerate(points.items()):
            xs = sorted(pts)
            col = (colour_of or {}).get(method, PALETTE[i % len(PALETTE)])
            style = "--" if method == random_label else "-"
            ax.plot(
                xs,
                [pts[x] for x in xs],
                style,
                marker="o",
                ms=3,
                color=col,
                lw=1.6,
                label=method_label(method),
            )
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("share of pixels " + ("kept" if mode == "kar" else "removed") + " (k)")
        ax.set_ylabel("test accuracy after retraining")
        ax.locator_params(axis="x", nbins=5)
        ax.set_title(f"{metric}   {orientation_label(mode == 'kar')}", loc="left")
        ax.legend(frameon=False, loc="best")
    return fig


def paired_diffs(
    metric: str,
    rows: Sequence[Mapping[str, Any]],
    names: Mapping[str, str] | None = None,
    higher_is_better: bool | None = None,
) -> Figure | None:
    """Paired differences of ``metric``: each variant minus the baseline, with its interval.

    ``rows`` are corrected paired-test rows (:func:`removalx.experiments.multiplicity.correct_table`)
    of one metric: a point at ``diff_mean``, a bar over ``[diff_ci_low, diff_ci_high]`` (the
    BCa bootstrap interval of the mean difference), the line of no difference at 0 and, right
    of each row, the paired t test's p (adjusted unless the correction is ``"none"``). The
    baseline (the first variant) is named in the caption. ``None`` when no row has a difference.
    """
    from removalx.experiments.multiplicity import format_p

    vals = [r for r in rows if r.get("metric") == metric and _finite(r.get("diff_mean"))]
    if not vals:
        return None
    labels = [method_label(str(r["variant"]), names) for r in vals]
    with _rc():
        fig = new_figure(4.6, 1.1 + _label_height(labels) * len(vals))
        ax = fig.add_subplot()
        ys = np.arange(len(vals))[::-1]
        mean = np.array([float(r["diff_mean"]) for r in vals])
        lo = np.array(
            [
                float(r["diff_ci_low"]) if _finite(r.get("diff_ci_low")) else m
                for r, m in zip(vals, mean, strict=True)
            ]
        )
        hi = np.array(
            [
                float(r["diff_ci_high"]) if _finite(r.get("diff_ci_high")) else m
                for r, m in zip(vals, mean, strict=True)
            ]
        )
        ax.axvline(0, color="#888", lw=0.8, ls="--")
        ax.errorbar(
            mean,
            ys,
            xerr=np.vstack([mean - lo, hi - mean]),
            fmt="o",
            color="#1f77b4",
            ms=4,
            capsize=3,
            lw=1.2,
        )
        ax.set_yticks(ys, labels)
        ax.set_ylim(-0.6, len(vals) - 0.4)
        ax.locator_params(axis="x", nbins=5)
        adjusted = "p_ttest_adj" in vals[0] and vals[0].get("correction", "none") != "none"
        for y, r in zip(ys, vals, strict=True):
            p = r.get("p_ttest_adj") if adjusted else r.get("p_ttest")
            ax.annotate(
                f"{'p adj.' if adjusted else 'p'} {format_p(p)}",
                (1.0, y),
                xycoords=("axes fraction", "data"),
                xytext=(4, 0),
                textcoords="offset points",
                va="center",
                fontsize=7,
                color="#444",
            )
        ax.set_xlabel("paired difference, variant − first\nmean and 95% BCa bootstrap CI")
        title = metric if higher_is_better is None else f"{metric}   {orientation_label(higher_is_better)}"
        ax.set_title(title, loc="left")
    return fig
