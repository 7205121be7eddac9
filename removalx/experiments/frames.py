"""Experiment results as ``pandas`` DataFrames (the ``pandas`` extra: ``pip install removalx[pandas]``)."""

from __future__ import annotations

import math
from typing import Any

from removalx.errors import MissingExtraError

__all__ = ["MissingExtraError", "paired_frame", "require_pandas", "scores_frame", "summary_frame"]

#: Per-score columns of ``--export FILE.csv``.
EXPORT_COLUMNS = (
    "dataset",
    "item",
    "method",
    "metric",
    "value",
    "target",
    "n_forward",
    "time_s",
    "plan_digest",
    "seed",
    "model",
)
#: Columns of :func:`scores_frame`, in order: the export's, the clip's label and more.
SCORE_COLUMNS = (*EXPORT_COLUMNS, "label", "metric_time_s", "recipe_hash")


def require_pandas() -> Any:
    """The ``pandas`` module, or :class:`MissingExtraError` naming the extra."""
    try:
        import pandas
    except ImportError:
        raise MissingExtraError(
            "DataFrames of experiment results need pandas, which is not installed.",
            "pip install 'removalx[pandas]'",
        ) from None
    return pandas


def scores_frame(store: Any, methods: list[str] | None = None, metrics: list[str] | None = None) -> Any:
    """One row per video x method x metric of ``store`` (see :data:`SCORE_COLUMNS`)."""
    pd = require_pandas()
    labels = {
        (r["dataset"], r["item"]): r["label"]
        for r in store.db.execute("SELECT dataset, item, label FROM videos").fetchall()
    }
    rows = [
        {**{k: s.get(k) for k in SCORE_COLUMNS}, "label": labels.get((s["dataset"], s["item"]))}
        for s in store.scores()
        if (methods is None or s["method"] in methods) and (metrics is None or s["metric"] in metrics)
    ]
    return pd.DataFrame(rows, columns=list(SCORE_COLUMNS))


def summary_frame(rows: list[dict[str, Any]], metrics: list[str]) -> Any:
    """One row per method x metric from :func:`~removalx.experiments.runner.aggregate` rows."""
    pd = require_pandas()
    out = []
    for r in rows:
        for m in metrics:
            s = r[m]
            out.append(
                {
                    "method": r["method"],
                    "metric": m,
                    "mean": s["mean"],
                    "sd": s.get("sd", math.nan),
                    "ci_low": s["ci_low"],
                    "ci_high": s["ci_high"],
                    "ci_method": s.get("ci_method"),
                    "small_n": s.get("small_n"),
                    "n": s["n"],
                    "higher_is_better": s.get("higher_is_better"),
                    "pooling": s.get("pooling"),
                    "n_videos": r["n_videos"],
                    "time_s": r["time_s"],
                    "n_forward": r["n_forward"],
                    "n_backward": r["n_backward"],
                }
            )
    return pd.DataFrame(out)


def paired_frame(rows: list[dict[str, Any]]) -> Any:
    """The paired tests of ``ablate`` as a DataFrame (one row per variant x metric)."""
    return require_pandas().DataFrame(rows)
