"""The report's charts, drawn with matplotlib: SVG inline in the HTML, PDF and PNG for papers.

:class:`FigureSink` turns a matplotlib figure into an HTML ``<figure>`` (the SVG inline, text
kept as text) and writes ``NAME.pdf`` / ``NAME.png`` into the report's figures folder.
:func:`metric_bars` and :func:`mean_curves` are the two built-in charts. A new chart is a
function that builds a :class:`matplotlib.figure.Figure` (use :func:`new_figure`) and hands it
to ``sink.add(fig, name, caption)``.

matplotlib is the ``report`` extra (``pip install removalx[report]``); :func:`require_matplotlib`
raises :class:`~removalx.errors.MissingExtraError` without it.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from removalx.errors import MissingExtraError
from removalx.files.atomic import write_bytes

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "FigureSink",
    "mean_curves",
    "metric_bars",
    "new_figure",
    "orientation_label",
    "require_matplotlib",
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


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:80] or "figure"


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


def metric_bars(metric: str, rows: Sequence[dict[str, Any]]) -> Figure | None:
    """Horizontal bars: the mean of ``metric`` per method with its 95% CI (``None`` if no value).

    ``rows`` are :func:`removalx.experiments.runner.aggregate` rows; the title carries the
    metric's orientation, the x axis what is plotted and how many videos.
    """
    vals = [(r["method"], r[metric]) for r in rows if isinstance(r.get(metric), dict)]
    vals = [(m, s) for m, s in vals if _finite(s.get("mean"))]
    if not vals:
        return None
    with _rc():
        fig = new_figure(4.2, 0.9 + 0.32 * len(vals))
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
        ax.set_yticks(ys, [_short(m) for m, _ in vals])
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
) -> Figure | None:
    """Mean perturbation curve per method, each curve interpolated on 101 points of x in [0, 1]."""
    grid = np.linspace(0, 1, 101)
    means = {
        m: np.mean([np.interp(grid, np.asarray(x, float), np.asarray(y, float)) for x, y in cs], axis=0)
        for m, cs in curves.items()
        if cs
    }
    if not means:
        return None
    with _rc():
        fig = new_figure(4.2, 2.8)
        ax = fig.add_subplot()
        for i, (method, m) in enumerate(means.items()):
            col = (colour_of or {}).get(method, PALETTE[i % len(PALETTE)])
            n = len(curves[method])
            ax.plot(grid, m, color=col, lw=1.6, label=f"{_short(method)} (n={n})")
        ax.set_xlim(0, 1)
        ax.set_xlabel("fraction of the clip perturbed")
        ax.set_ylabel("score of the explained class")
        ax.locator_params(axis="x", nbins=5)
        ax.locator_params(axis="y", nbins=5)
        area = "" if higher_is_better is None else f"   area {orientation_label(higher_is_better)}"
        ax.set_title(f"{metric}{area}", loc="left")
        ax.legend(frameon=False, loc="best")
    return fig


def _short(label: str, n: int = 24) -> str:
    return label if len(label) <= n else label[: n - 1] + "…"


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
                xs, [pts[x] for x in xs], style, marker="o", ms=3, color=col, lw=1.6, label=_short(method)
            )
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("share of pixels " + ("kept" if mode == "kar" else "removed") + " (k)")
        ax.set_ylabel("test accuracy after retraining")
        ax.locator_params(axis="x", nbins=5)
        ax.set_title(f"{metric}   {orientation_label(mode == 'kar')}", loc="left")
        ax.legend(frameon=False, loc="best")
    return fig
