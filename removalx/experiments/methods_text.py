"""A "methods" paragraph of one experiment, generated from stored facts only.

:func:`methods_paragraph` writes what :func:`~removalx.experiments.provenance.experiment_facts`
read from the results database -- the model and its weights hash, the data set and clip size,
each method's recipe and how it differs from its base recipe, each metric's protocol, the
statistics (with the p-value correction the report applies), the seeds and the software -- as plain sentences a researcher can paste and edit.
Nothing is invented: a fact the database lacks is written as "not recorded".
"""

from __future__ import annotations

from removalx.experiments.multiplicity import DEFAULT_CORRECTION, check_correction
from removalx.experiments.provenance import ExperimentFacts, MethodFacts
from removalx.experiments.recipe_diff import format_changes

__all__ = ["CORRECTION_PHRASES", "methods_paragraph", "statistics_sentence"]

#: Characters of a sha256 shown in running text (the Setup table gives it whole).
SHORT_HASH = 12


def _model_sentence(f: ExperimentFacts) -> str:
    info = f.weights_info or {}
    digest = info.get("sha256")
    kind = str(info.get("kind", "weights not recorded"))
    if kind == "random init":
        weights = "randomly initialised weights"
    elif digest:
        what = "source file" if kind == "factory code" else "weights"
        weights = f"{kind}, {what} sha256 {str(digest)[:SHORT_HASH]}…"
    else:
        weights = kind
    clip = "×".join(str(x) for x in f.clip_shape) if f.clip_shape else "size not recorded"
    target = "the dataset label" if f.args.get("target") == "label" else "the predicted class"
    seed = f.args.get("data_seed")
    data_seed = f", data seed {seed}" if seed is not None and f.dataset.startswith("zoo:") else ""
    return (
        f"We explained the model {f.model} ({weights}) on {f.n_clips} clips of {f.dataset} "
        f"(T×H×W = {clip}{data_seed}), explaining {target}."
    )


def _method_phrase(m: MethodFacts) -> str:
    if m.recipe is None:
        return f"{m.label} (random N(0, 1) maps, the baseline of STEP journal Sec. IV-B)"
    changes = format_changes(m.changes, m.defaults, m.base, max_old=2)
    return f"{m.label} ({'; '.join(changes)})" if changes else f"{m.label} (as the base recipe)"


def _methods_sentence(f: ExperimentFacts) -> str:
    recipes = [m for m in f.methods if m.recipe is not None]
    base = recipes[0] if recipes else None
    common = format_changes(f.common, base.defaults if base else (), base.base if base else None, max_old=2)
    with_common = f" with {'; '.join(common)}" if common else ""
    if f.kind == "ablate" and base is not None:
        vary = f.args.get("vary")
        varied = f" varying {str(vary)[:120]}" if vary else ""
        variants = ", ".join(_method_phrase(m) for m in f.methods)
        return f"We ran the recipe {base.base_name}{with_common}{varied}: {variants}."
    phrases = ", ".join(_method_phrase(m) for m in f.methods)
    verb = "compared" if len(f.methods) > 1 else "used"
    return f"We {verb} {phrases}{with_common}."


def _metrics_sentence(f: ExperimentFacts) -> str:
    if not f.metrics:
        return "No metric was scored."
    return "Each explanation was scored with " + "; ".join(m.protocol for m in f.metrics) + "."


#: How the methods paragraph names each p-value correction (:data:`~removalx.experiments.multiplicity.CORRECTIONS`).
CORRECTION_PHRASES = {
    "holm": "adjusted with Holm's step-down procedure (family-wise error rate)",
    "bh": "adjusted with the Benjamini-Hochberg step-up procedure (false discovery rate)",
    "none": "reported without a multiple-comparison correction",
}


def _paired_sentence(correction: str) -> str:
    """The ``ablate`` sentence: the two paired tests, the effect sizes and the p-value correction."""
    if correction == "none":
        family = f"their p-values are {CORRECTION_PHRASES['none']}"
    else:
        family = (
            "their p-values were adjusted as one family over every variant × metric test of the "
            f"experiment (each test separately) {CORRECTION_PHRASES[correction].removeprefix('adjusted ')}"
        )
    return (
        " Each variant was compared with the first on the clips both explained by a two-sided paired "
        "t-test and a Wilcoxon signed-rank test, with two effect sizes, the paired mean difference "
        "and Cohen's d_z (mean difference / standard deviation of the differences), each with a 95% "
        f"BCa bootstrap confidence interval; {family}."
    )


def statistics_sentence(f: ExperimentFacts, correction: str = DEFAULT_CORRECTION) -> str:
    """The statistics the report's tables use, in one to three sentences.

    Written from :mod:`removalx.experiments.stats` and
    :mod:`removalx.experiments.multiplicity` as they stand: BCa bootstrap means; for ``ablate``
    the paired mean difference and Cohen's d_z with BCa intervals, the paired t and Wilcoxon
    tests, and the p-value ``correction`` the report was given (Holm, Benjamini-Hochberg or
    none, :func:`~removalx.experiments.multiplicity.correct_table`); for ``compare`` with the
    random baseline, STEP's alpha.

    Raises
    ------
    ConfigError
        ``correction`` is not one of :data:`~removalx.experiments.multiplicity.CORRECTIONS`.
    """
    from removalx.experiments.stats import BOOTSTRAP_RESAMPLES

    check_correction(correction)
    out = (
        "Per method and metric we report the mean over clips with a 95% BCa bootstrap confidence "
        f"interval ({BOOTSTRAP_RESAMPLES} resamples, seed 0)."
    )
    if f.kind == "ablate" and len(f.methods) > 1:
        out += _paired_sentence(correction)
    if f.kind == "compare" and any(m.recipe is None for m in f.methods):
        out += " The reliability of each AUC metric is STEP journal's α (Eq. 20–21) with the random maps."
    return out


def _seeds_sentence(f: ExperimentFacts) -> str:
    seeds = sorted({s for m in f.methods if m.recipe is not None for s in m.seeds})
    if not seeds:
        return ""
    return f"Recipe seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}."


def _software_sentence(f: ExperimentFacts) -> str:
    sw = f.software
    if not sw:
        return "Software versions: not recorded."
    parts = [
        f"removalx {sw.get('removalx', '?')}",
        f"PyTorch {sw.get('torch', '?')}",
        f"Python {sw.get('python', '?')}",
    ]
    return "Software: " + ", ".join(parts) + "."


def methods_paragraph(f: ExperimentFacts, correction: str = DEFAULT_CORRECTION) -> str:
    """The methods paragraph of one experiment (plain text, sentences separated by spaces).

    ``correction`` is the p-value correction the report applies to ``ablate``'s paired tests
    (``write_report(correction=...)``, ``removalx report --correction``).
    """
    parts = [
        _model_sentence(f),
        _methods_sentence(f),
        _seeds_sentence(f),
        _metrics_sentence(f),
        statistics_sentence(f, correction),
        _software_sentence(f),
    ]
    return " ".join(p for p in parts if p)
