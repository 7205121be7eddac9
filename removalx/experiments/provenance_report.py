"""The report's "Setup" part of every experiment and its ``references.bib``.

:func:`setup_part` states what the numbers of an experiment were made with (the model and its
weights sha256, the data set and clip size, each method's recipe as a diff against its base
recipe, each metric's protocol, the seeds, the software), a methods paragraph to paste
(:func:`~removalx.experiments.methods_text.methods_paragraph`) and the citation keys of the
papers behind it; :func:`write_bibliography` writes their BibTeX next to the page.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import yaml

from removalx.experiments.bibliography import bibtex, references_for
from removalx.experiments.methods_text import methods_paragraph
from removalx.experiments.multiplicity import DEFAULT_CORRECTION, check_correction
from removalx.experiments.provenance import ExperimentFacts, experiment_facts
from removalx.experiments.recipe_diff import format_changes
from removalx.experiments.report_context import ExperimentView, ReportContext

__all__ = ["BIB_NAME", "bibliography_keys", "setup_part", "write_bibliography"]

#: File name of the BibTeX written next to the report.
BIB_NAME = "references.bib"


def _statistics(f: ExperimentFacts, correction: str = DEFAULT_CORRECTION) -> list[str]:
    """Keys of :data:`~removalx.experiments.bibliography.STATISTICS` the experiment's tables use.

    Every table has BCa bootstrap intervals; ``ablate`` with two or more variants adds the paired
    tests, Cohen's d_z and the p-value ``correction`` (``holm`` / ``bh``; nothing for ``none``).
    """
    stats = ["bootstrap_ci"]
    if f.kind == "ablate" and len(f.methods) > 1:
        stats += ["wilcoxon", "cohen_dz"]
        if check_correction(correction) != "none":
            stats.append(correction)
    if f.kind == "compare" and any(m.recipe is None for m in f.methods):
        stats.append("reliability_alpha")
    return stats


def _keys(f: ExperimentFacts, correction: str = DEFAULT_CORRECTION) -> list[str]:
    presets = [str(m.config["preset"]) for m in f.metrics if m.config.get("preset")]
    metrics = [m.plugin for m in f.metrics]
    return references_for(f.recipes, metrics, _statistics(f, correction), presets, models=[f.model])


def _row(name: str, value: str) -> str:
    return f"<tr><th>{html.escape(name)}</th><td class='setup'>{value}</td></tr>"


def _weights(f: ExperimentFacts) -> str:
    info = f.weights_info or {}
    parts = [html.escape(str(info.get("kind", "not recorded")))]
    if info.get("sha256"):
        parts.append(f"sha256 <code>{html.escape(str(info['sha256']))}</code>")
    for key in ("path", "note", "when"):
        if info.get(key):
            parts.append(html.escape(str(info[key])[:300]))
    return "; ".join(parts)


def _facts_table(f: ExperimentFacts) -> str:
    clip = "×".join(map(str, f.clip_shape)) if f.clip_shape else "not recorded"
    a = f.args
    data = (
        f"{html.escape(f.dataset)}: {f.n_clips} clips, T×H×W = {clip}; requested frames={a.get('frames', '?')}, "
        f"size={a.get('size', '?')}, data seed={a.get('data_seed', '?')}; target: {html.escape(str(a.get('target', 'pred')))}"
    )
    if a.get("only_correct_by"):
        data += f"; only clips classified correctly by {html.escape(str(a['only_correct_by'])[:200])}"
    sw = "; ".join(f"{html.escape(k)} {html.escape(str(v))}" for k, v in (f.software or {}).items())
    seeds = sorted({s for m in f.methods for s in m.seeds})
    return (
        "<table>"
        + _row("model", html.escape(f.model[:300]))
        + _row("weights", _weights(f))
        + _row("data", data)
        + _row("seeds", f"recipe seeds {', '.join(map(str, seeds)) or '–'}; bootstrap seed 0")
        + _row("software", sw or "not recorded (the database predates recorded provenance)")
        + "</table>"
    )


def _methods_table(f: ExperimentFacts) -> str:
    out = [
        "<table><tr><th>method</th><th>base recipe</th><th>differences from the base recipe</th><th>videos</th></tr>"
    ]
    if f.common:
        first = next((m for m in f.methods if m.recipe is not None), None)
        common = format_changes(f.common, first.defaults if first else (), first.base if first else None)
        out.append(
            f"<tr><td class='method'><i>all methods</i></td><td></td><td class='setup'>{html.escape('; '.join(common))}</td><td></td></tr>"
        )
    for m in f.methods:
        if m.recipe is None:
            diff, base = "random N(0, 1) maps (baseline)", "–"
        else:
            diff = "; ".join(format_changes(m.changes, m.defaults, m.base)) or "as the base recipe"
            base = (m.base_name or "custom") if m.base is not None else f"{m.base_name} (base not recorded)"
        out.append(
            f"<tr><td class='method'>{html.escape(m.label)}</td><td>{html.escape(str(base))}</td>"
            f"<td class='setup'>{html.escape(diff)}</td><td>{m.n_videos}</td></tr>"
        )
    out.append("</table>")
    return "".join(out)


def _resolved(f: ExperimentFacts) -> str:
    blocks = [
        f"<details><summary>{html.escape(m.label)}: resolved recipe</summary>"
        f"<pre>{html.escape(yaml.safe_dump(m.recipe, sort_keys=False))}</pre></details>"
        for m in f.methods
        if m.recipe is not None
    ]
    return "".join(blocks)


def setup_part(ctx: ReportContext, view: ExperimentView) -> str:
    """Setup of one experiment: facts, recipes, metric protocols, methods paragraph, citation keys."""
    f = experiment_facts(ctx.store, view.exp)
    correction = str(getattr(ctx, "correction", DEFAULT_CORRECTION))
    protocols = "".join(f"<li>{html.escape(m.protocol)}</li>" for m in f.metrics)
    keys = ", ".join(_keys(f, correction))
    return (
        "<h3>Setup</h3>"
        + _facts_table(f)
        + "<h4>Methods (resolved recipes as differences from their base recipe)</h4>"
        + _methods_table(f)
        + _resolved(f)
        + f"<h4>Metric protocols</h4><ul class='setup'>{protocols}</ul>"
        + "<h4>Methods paragraph</h4><p class='note'>Generated from the stored facts above; edit before use.</p>"
        + f"<blockquote class='methods'>{html.escape(methods_paragraph(f, correction))}</blockquote>"
        + f"<p class='note'>References: {html.escape(keys)} (BibTeX in {BIB_NAME} next to this page).</p>"
    )


def bibliography_keys(
    store: Any, experiments: list[dict[str, Any]], correction: str = DEFAULT_CORRECTION
) -> list[str]:
    """Citation keys of every experiment of the report, first use first.

    ``correction`` is the report's p-value correction: its paper is cited for ``ablate``.
    """
    keys: list[str] = []
    for exp in experiments:
        keys.extend(_keys(experiment_facts(store, exp), correction))
    return list(dict.fromkeys(keys))


def write_bibliography(ctx: ReportContext, folder: Path) -> Path:
    """Write :data:`BIB_NAME` (BibTeX of the papers behind every experiment) into ``folder``."""
    path = folder / BIB_NAME
    correction = str(getattr(ctx, "correction", DEFAULT_CORRECTION))
    path.write_text(bibtex(bibliography_keys(ctx.store, ctx.experiments, correction)), encoding="utf-8")
    return path
