"""``compare --sanity``: the randomisation checks of every compared method and their verdicts.

The switch adds two ordinary metrics to the run (so the store keeps them and every executor,
Ray included, computes them like any other metric):

* ``mprt``: Adebayo et al.'s model parameter randomisation test with its defaults (cascading
  top-down over 5 groups of layers, Spearman rank correlation of the absolute maps; the
  value is the correlation at the fully randomised model);
* ``random_logit``: Sixt et al.'s random logit test (SSIM with a random other class's map).

Neither paper states a pass/fail threshold (Adebayo et al. judge visually; Sixt et al.
report SSIM curves). removalx's choice, labelled as such wherever it is printed: a method
**fails** a check when its mean over the clips exceeds 0.5 -- i.e. its explanation keeps more
than half its rank order (MPRT) or structure (random logit) when the model's weights or the
explained class are replaced by random ones.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

__all__ = [
    "SANITY_THRESHOLDS",
    "THRESHOLD_SOURCE",
    "failures",
    "mark_experiment",
    "mark_rows",
    "sanity_lines",
    "with_sanity_metrics",
]

#: metric label -> the mean above which a method fails the check.
SANITY_THRESHOLDS: dict[str, float] = {"mprt": 0.5, "random_logit": 0.5}

THRESHOLD_SOURCE = (
    "threshold: removalx's choice (the papers state none): mean over clips > 0.5 fails -- "
    "MPRT: Spearman |rank| correlation at full cascading randomisation (Adebayo et al. 2018); "
    "random logit: SSIM with a random class's map (Sixt et al. 2020)"
)


def with_sanity_metrics(metrics: str | Sequence[str]) -> str:
    """``metrics`` (comma-separated or a list) with ``mprt`` and ``random_logit`` added if absent."""
    names = [m.strip() for m in (metrics.split(",") if isinstance(metrics, str) else metrics) if m.strip()]
    labels = {m.split("=", 1)[0].strip() for m in names}
    return ",".join(names + [m for m in SANITY_THRESHOLDS if m not in labels])


def failures(rows: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Method -> the sanity checks it fails, from :func:`removalx.experiments.runner.aggregate` rows."""
    out: dict[str, list[str]] = {}
    for row in rows:
        failed = []
        for metric, limit in SANITY_THRESHOLDS.items():
            cell = row.get(metric)
            mean = cell.get("mean") if isinstance(cell, dict) else None
            if isinstance(mean, (int, float)) and math.isfinite(mean) and mean > limit:
                failed.append(metric)
        out[str(row["method"])] = failed
    return out


def mark_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows with ``[fails: mprt, random_logit]`` appended to the names of failing methods."""
    fails = failures(rows)
    return [
        {**r, "method": f"{r['method']} [fails: {', '.join(fails[str(r['method'])])}]"}
        if fails.get(str(r["method"]))
        else r
        for r in rows
    ]


def sanity_lines(rows: list[dict[str, Any]]) -> list[str]:
    """What ``compare --sanity`` prints under the table: verdicts and the threshold's source."""
    fails = failures(rows)
    bad = [m for m, f in fails.items() if f]
    verdict = f"sanity: {len(bad)} of {len(fails)} methods fail" + (f" ({', '.join(bad)})" if bad else "")
    return [verdict, THRESHOLD_SOURCE]


def mark_experiment(experiment: Any) -> Any:
    """Add a ``sanity_fails`` column to ``experiment.summary`` and the verdict lines to its notes."""
    summary = experiment.summary
    rows: dict[str, dict[str, Any]] = {}
    for rec in summary.to_dict("records"):
        rows.setdefault(str(rec["method"]), {"method": str(rec["method"])})[str(rec["metric"])] = {
            "mean": rec["mean"]
        }
    fails = failures(list(rows.values()))
    summary["sanity_fails"] = [", ".join(fails.get(str(m), [])) for m in summary["method"]]
    experiment.notes.extend(sanity_lines(list(rows.values())))
    return experiment
