"""Paper protocols of the insertion / deletion metrics, one preset per paper.

A preset fixes every setting of the perturbation curve and its area at once: the ranking
unit, the number of steps ``L``, the substrate of each game, the area formula, the order
and what is recorded. The metric plugins (``deletion``, ``insertion``, ``minimal_mask``)
take ``preset:`` and fill from it every curve setting the user did not give; a setting the
user gives always wins (see ``docs/metrics.md``, "Presets").

============  =================  ==========  ===================================  ============
preset        unit               steps L     substrate (deletion / insertion)     area
============  =================  ==========  ===================================  ============
``removal``   ``level`` (200)    one a unit  black / black                        trapezoid
``step``      ``patch`` (7 px)   128         training-data mean / same            Eq. 19 mean
``aosa``      ``pixel``          28          black / blur (sigma 5)               trapezoid
``eccvw``     ``pixel``          128         gray / blur (sigma 20)               trapezoid
============  =================  ==========  ===================================  ============

* ``removal`` -- "removal-based video explanations" Sec. 4.6.1: black for removed and not yet
  inserted regions (stated). Steps, units and area are not stated; the authors' released
  evaluator thresholds the min-max-normalised map at ``i / 200`` (its evaluation example;
  ``levels: 0`` = its function default, one step per distinct value) and integrates the
  curve over the fraction of pixels with the trapezoid rule.
* ``step`` -- STEP journal Sec. IV-A: baseline input = mean of the training data (Eq. 12,
  both games), ``F = (1/L) sum_{l=1..L} Phi(X^(l))`` (Eq. 19), 7x7 patches (Sec. V-A); the
  authors' released code runs ``L = 128`` and ranks superpixels by the *sum* of importance.
  The colour is ``fill_value`` when given; ``evaluate`` / ``compare`` / ``ablate`` give the
  mean colour of their dataset (:func:`removalx.metrics.dataset_mean`, via
  :mod:`removalx.experiments.substrates`); with no dataset known it falls back to the model's
  normalisation mean (labelled in docs/fidelity.md).
* ``aosa`` -- adaptive occlusion paper Sec. 4.2: pixels, 28 iterations, AUC over the
  percentage of pixels. The substrates are not stated (no released evaluation code): black
  / blurred, as in the RISE protocol the paper cites for the metric (chosen).
* ``eccvw`` -- ECCV-W video attribution study Sec. 4.1: insert pixels into highly blurred
  frames, delete them to gray, pixel-wise. ``L``, the blur strength and the area formula are
  not stated: 128 steps and sigma 20 as in the authors' later released evaluation code,
  trapezoid rule (chosen).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from removalx.errors import ConfigError

__all__ = [
    "AUC_FORMULAS",
    "DEFAULT_PRESET",
    "PRESETS",
    "PRESET_FIELDS",
    "Preset",
    "preset_settings",
    "settings_line",
    "settings_lines",
]

Preset = Literal["removal", "step", "aosa", "eccvw"]
DEFAULT_PRESET: Preset = "removal"
AUC_FORMULAS: tuple[str, ...] = ("trapezoid", "step_mean")

#: Settings every preset fixes (the fields a preset fills when the user leaves them out).
PRESET_FIELDS: tuple[str, ...] = (
    "order",
    "unit",
    "steps",
    "levels",
    "aggregate",
    "fill",
    "blur_sigma",
    "patch",
    "superpixels",
    "behavior",
    "auc",
)

_BASE: dict[str, Any] = {
    "order": "morf",
    "unit": "pixel",
    "steps": 128,
    "levels": 200,
    "aggregate": "mean",
    "fill": "black",
    "blur_sigma": 10.0,
    "patch": 7,
    "superpixels": 256,
    "behavior": "probability",
    "auc": "trapezoid",
}

#: Per preset: the settings that differ from ``_BASE``; ``fill`` may be ``{game: substrate}``.
PRESETS: dict[str, dict[str, Any]] = {
    "removal": {"unit": "level", "levels": 200, "steps": "all", "fill": "black"},
    "step": {
        "unit": "patch",
        "patch": 7,
        "steps": 128,
        "fill": "dataset_mean",
        "aggregate": "sum",
        "auc": "step_mean",
    },
    "aosa": {
        "unit": "pixel",
        "steps": 28,
        "fill": {"deletion": "black", "insertion": "blur"},
        "blur_sigma": 5.0,
    },
    "eccvw": {
        "unit": "pixel",
        "steps": 128,
        "fill": {"deletion": "gray", "insertion": "blur"},
        "blur_sigma": 20.0,
    },
}


def preset_settings(preset: str, mode: str) -> dict[str, Any]:
    """Every setting in :data:`PRESET_FIELDS` of ``preset`` for game ``mode``.

    Parameters
    ----------
    preset : {"removal", "step", "aosa", "eccvw"}
    mode : {"deletion", "insertion"}

    Examples
    --------
    >>> preset_settings("eccvw", "deletion")["fill"], preset_settings("eccvw", "insertion")["fill"]
    ('gray', 'blur')
    """
    if preset not in PRESETS:
        raise ConfigError(f"Unknown preset {str(preset)[:40]!r}.", f"Use one of {', '.join(PRESETS)}.")
    if mode not in ("deletion", "insertion"):
        raise ConfigError(f"Unknown mode {str(mode)[:40]!r}.", "Use 'deletion' or 'insertion'.")
    out = {**_BASE, **PRESETS[preset]}
    if isinstance(out["fill"], Mapping):
        out["fill"] = out["fill"][mode]
    return out


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_fmt(v) for v in value) + "]"
    return str(value)


def settings_line(label: str, details: Mapping[str, Any]) -> str:
    """One line naming the preset and the settings behind a metric result.

    Parameters
    ----------
    label : str
        The metric's column label.
    details : Mapping
        The metric's result dict (or the stored ``details``); reads ``preset`` and ``settings``.

    Examples
    --------
    >>> settings_line("del", {"preset": "step", "settings": {"steps": 128, "unit": "patch"}})
    'del: preset step; steps=128 unit=patch'
    """
    preset = details.get("preset")
    settings = details.get("settings") or {}
    head = f"{label}: preset {preset}" if preset else f"{label}: no preset"
    body = " ".join(f"{k}={_fmt(v)}" for k, v in settings.items() if v is not None)
    over = details.get("overrides") or []
    tail = f" (set by the user: {', '.join(map(str, over))})" if over else ""
    return f"{head}; {body}{tail}" if body else head + tail


def settings_lines(scores: list[Mapping[str, Any]], metrics: list[str]) -> list[str]:
    """:func:`settings_line` of the first stored score of every metric in ``metrics``.

    ``scores`` are rows with ``metric`` and ``details`` (as ``Store.scores()`` returns them).
    """
    first: dict[str, Mapping[str, Any]] = {}
    for s in scores:
        m = s.get("metric")
        if m in metrics and m not in first:
            first[m] = s.get("details") or {}
    return [settings_line(m, first[m]) for m in metrics if m in first]
