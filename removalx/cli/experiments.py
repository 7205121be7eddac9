"""Subcommands ``evaluate``, ``compare``, ``ablate`` and ``report`` of the ``removalx`` CLI.

Wired into :mod:`removalx.cli` through :func:`add_subcommands` and :data:`COMMANDS`; also
runnable alone: ``python -m removalx.cli.experiments evaluate ...``. Exit codes as in
``removalx``: 0 success, 2 usage error, 3 invalid input, 1 internal error.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from removalx.cli.common import (
    add_model_options,
    add_overrides,
    from_args,
    json_clean,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
)
from removalx.errors import ConfigError
from removalx.files.atomic import write_bytes
from removalx.files.outputs import check_output_file

__all__ = ["COMMANDS", "add_subcommands", "main"]


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dataset",
        default="zoo:synthetic",
        help="zoo:synthetic, zoo:synthetic-two-part or a folder of video files (default zoo:synthetic)",
    )
    p.add_argument(
        "--n-videos", type=positive_int, help="number of videos (default: 8 synthetic / all files)"
    )
    p.add_argument("--frames", type=positive_int, default=16, help="frames per clip (default 16)")
    p.add_argument("--size", type=positive_int, default=112, help="frame size (default 112)")
    p.add_argument("--data-seed", type=int, default=0, help="first seed of zoo:synthetic clips (default 0)")
    p.add_argument(
        "--metrics",
        default="deletion,insertion",
        help="comma-separated metric plugins, LABEL=PLUGIN for aliases (default deletion,insertion)",
    )
    p.add_argument(
        "--metric-set",
        action="append",
        default=[],
        metavar="METRIC.KEY=VALUE",
        help="metric config, e.g. --metric-set deletion.steps=28 (repeatable)",
    )
    add_overrides(
        p,
        "recipe override (repeatable): KEY=VALUE for every recipe (compare: every recipe that has "
        "KEY's stage, the others are skipped with a note), RECIPE:KEY=VALUE for one recipe, e.g. "
        "--set rise3d:sample_selection.n_samples=100",
    )
    add_model_options(
        p,
        "model spec: zoo:NAME, torchvision:ARCH, python:MODULE_OR_FILE:FACTORY or hf:FOLDER_OR_CACHED_NAME "
        "(default %(default)s)",
        "weights file for the model, or 'none'",
        "cpu, cuda, ...",
    )
    p.add_argument("--seed", type=int, help="recipe seed (default: each recipe's)")
    p.add_argument(
        "--target",
        choices=("pred", "label"),
        default="pred",
        help="explain the predicted class (default) or the dataset label",
    )
    p.add_argument("--batch-size", type=positive_int, help="perturbed clips per forward pass")
    p.add_argument("--db", required=True, help="SQLite results file (created; reruns skip stored work)")
    p.add_argument("--name", help="experiment name in the database (default: derived from the command)")
    p.add_argument("--export", help="write per-video scores and aggregates to FILE.csv or FILE.json")
    p.add_argument(
        "--quiet",
        "-q",
        action="store_true",
        help="no progress bar and no computed/reused counts; the results are still printed",
    )
    d = p.add_argument_group("datasets (docs/experiments.md, Datasets)")
    d.add_argument(
        "--video-root",
        help="folder of the clips of a kinetics:/ucf101: annotation file (default: its folder)",
    )
    d.add_argument(
        "--classes", help="kinetics: class names, one per line (default: the CSV's labels, sorted)"
    )
    d.add_argument(
        "--boxes",
        help="folder of UCF101-24-style per-frame boxes (BOXES/<clip>/00001.txt: 'label x1 y1 x2 y2' lines)",
    )
    d.add_argument(
        "--only-correct-by",
        metavar="SPEC,SPEC",
        help="keep only the clips every listed model classifies correctly (removal-based video explanations, Sec. 4.5)",
    )
    x = p.add_argument_group("execution (docs/scaling.md)")
    x.add_argument(
        "--executor",
        choices=("local", "ray"),
        default="local",
        help="compute in this process (default) or on Ray workers (pip install removalx[ray])",
    )
    x.add_argument(
        "--address",
        help="Ray cluster address: auto, local, HOST:PORT (GCS) or ray://HOST:PORT (Ray Client); "
        "default: start Ray here. The Ray flags need --executor ray",
    )
    x.add_argument(
        "--workers", type=positive_int, help="Ray workers (default: as many as the resources hold)"
    )
    x.add_argument(
        "--cpus-per-worker",
        type=positive_float,
        default=1.0,
        help="CPUs each Ray worker declares; torch threads per worker follow it (default 1)",
    )
    x.add_argument(
        "--gpus-per-worker",
        type=non_negative_float,
        default=0.0,
        help="GPUs each Ray worker declares, fractions allowed, e.g. 0.5 (default 0)",
    )
    p.add_argument("--item-delay", type=non_negative_float, default=0.0, help=argparse.SUPPRESS)


def _recipe(p: argparse.ArgumentParser) -> None:
    p.add_argument("--recipe", "-r", required=True, help="built-in recipe name or YAML file")


def _ablate_options(a: argparse.ArgumentParser) -> None:
    """``ablate``'s variants (``--vary`` or ``--variants``) and ``--no-substrate-check``."""
    v = a.add_mutually_exclusive_group(required=True)
    v.add_argument(
        "--vary",
        metavar="KEY=V1,V2|STAGE=[NAME:]{...},...",
        help="one key's values (removal.name=constant,blur,mean) or whole stage configs as YAML/JSON "
        "mappings with optional display names: 'removal=black:{name: constant},blur5:{name: blur, sigma: 5}'",
    )
    v.add_argument(
        "--variants",
        metavar="FILE",
        help="YAML list of variants: [{name: black, removal: {name: constant}}, {name: blur5, removal: {...}}]",
    )
    a.add_argument(
        "--no-substrate-check",
        action="store_true",
        help="when the removal varies, do not also score each removal-based metric at a substrate no "
        "variant uses (METRIC@SUBSTRATE) and with the data's ground truth (docs/experiments.md)",
    )


def add_subcommands(subparsers: Any) -> None:
    """Add ``evaluate``, ``compare``, ``ablate`` and ``report`` to an argparse subparsers object."""
    e = subparsers.add_parser(
        "evaluate",
        help="explain a dataset with one recipe and score it",
        description="Explain every video of a dataset with a recipe, score each "
        "explanation, store everything in --db; print per-metric mean and 95% CI.",
    )
    _recipe(e)
    _common(e)
    c = subparsers.add_parser(
        "compare",
        help="several recipes on the same videos: methods x metrics",
        description="Methods x metrics table with time and forward passes, plus the "
        "reliability alpha of every AUC metric (STEP journal Eq. 20-21).",
    )
    c.add_argument("--recipes", required=True, help="comma-separated recipe names or YAML files")
    c.add_argument("--no-random", action="store_true", help="do not add the random-map baseline (no alpha)")
    c.add_argument(
        "--sanity",
        action="store_true",
        help="also run the randomisation checks (metrics mprt, random_logit) and mark the methods that "
        "fail them (threshold: removalx's choice, printed under the table)",
    )
    _common(c)
    c.set_defaults(model="zoo:r3d_tiny_ls")  # not saturated: probability rewards and AUCs stay informative
    a = subparsers.add_parser(
        "ablate",
        help="vary one stage of a recipe, everything else fixed",
        description="Variants of a recipe that differ in one key (same seed, sample "
        "plan and videos); paired tests of each variant against the first.",
    )
    _recipe(a)
    _ablate_options(a)
    _common(a)
    _correction(a)
    r = subparsers.add_parser(
        "report",
        help="static HTML report of a results database",
        description="Write a self-contained HTML page (inline SVG, GIFs as data URIs).",
    )
    r.add_argument("db", help="SQLite results file")
    r.add_argument("--out", "-o", default="report.html", help="HTML file (default report.html)")
    r.add_argument(
        "--max-videos",
        type=non_negative_int,
        default=6,
        help="overlay GIFs for at most N videos per experiment",
    )
    r.add_argument(
        "--gallery-scale",
        choices=("shared", "per-method"),
        default="shared",
        help="colour scale of the overlays side by side: 'shared' (default; one scale for the maps of "
        "one kind, so equal values get equal colours) or 'per-method' (each map stretched to its own "
        "range, for methods whose values differ by orders of magnitude)",
    )
    _correction(r)
    from removalx.cli.study import add_study_parser

    add_study_parser(subparsers)


# -- shared ----------------------------------------------------------------------------------------
def _correction(parser: Any) -> None:
    """``--correction holm|bh|none``: the p-value correction across an experiment's paired tests."""
    parser.add_argument(
        "--correction",
        choices=("holm", "bh", "none"),
        default="holm",
        help="correction of the p-values of the paired tests, across all variants x metrics: 'holm' "
        "(default; family-wise error), 'bh' (Benjamini-Hochberg, false discovery rate) or 'none'; "
        "raw and adjusted p are both shown",
    )


def options_from_args(args: argparse.Namespace) -> Any:
    """The :class:`~removalx.experiments.api.Options` of parsed command-line arguments."""
    from removalx.experiments.api import Options

    return from_args(Options, args, progress=not args.quiet)


def _run(
    args: argparse.Namespace, kind: str, triples: list[tuple[str, str, dict[str, Any]]], random_baseline: bool
) -> Any:
    from removalx.experiments.api import run_experiment

    _check_export(args.export)
    out = run_experiment(
        kind, triples, options_from_args(args), random_baseline=random_baseline, args=vars(args)
    )
    for note in out.notes:  # about what the results are: shown also with --quiet
        print(note, file=sys.stderr)
    counts = out.counts
    if not args.quiet:
        print(
            f"{kind}: {counts.explained} explanations computed, {counts.explanations_skipped} reused; "
            f"{counts.scored} scores computed, {counts.scores_skipped} reused ({args.db})"
        )
    if out.retrain_metrics:
        from removalx.experiments.retrain import curve_rows, format_curves

        if not args.quiet:
            print(f"{', '.join(out.retrain_metrics)}: {out.retrained} retrained points computed")
        for line in format_curves(curve_rows(out.store, out.name)):
            print(line)
    return out


def _present(
    args: argparse.Namespace,
    out: Any,
    extra: Callable[[Any], dict[str, Any]] | None = None,
    lines: Callable[[dict[str, Any]], Iterable[str]] | None = None,
    sanity: bool = False,
) -> int:
    """Print the table and settings of run ``out`` (also with ``--quiet``), export it, close its store.

    ``extra(out)`` is what the command adds to the export (none by default), ``lines(extra)``
    what it prints after the settings.
    """
    from removalx.experiments.runner import aggregate

    store, methods, metrics, scope = out.store, out.methods, out.metrics, out.scope
    try:
        added = extra(out) if extra is not None else {}
        rows = aggregate(store, methods, metrics, scope)
        if sanity:  # compare --sanity: failing methods marked in the table, verdicts below it
            from removalx.experiments.sanity import mark_rows, sanity_lines

            _print_table(mark_rows(rows), metrics)
        else:
            _print_table(rows, metrics)
        _print_settings(store, metrics)
        for line in lines(added) if lines is not None else ():
            print(line)
        for line in sanity_lines(rows) if sanity else ():
            print(line)
        if args.export:
            _export(args.export, store, methods, metrics, scope, added)
    finally:
        store.close()
    return 0


def _print_settings(store: Any, metrics: list[str]) -> None:
    """One line per metric: the preset and resolved settings that produced its numbers."""
    from removalx.metrics import settings_lines

    for line in settings_lines(store.scores(), metrics):
        print(line)


def _print_table(rows: list[dict[str, Any]], metrics: list[str]) -> None:
    from removalx.experiments.stats import SMALL_N_NOTE, ci_label, format_interval

    small: set[str] = set()

    def cell(s: dict[str, Any]) -> str:
        if not math.isfinite(s["mean"]):
            return "-"
        if s.get("small_n") and math.isfinite(s["ci_low"]):
            small.add(str(s.get("n")))
        ci = format_interval({**s, "small_n": False})
        if ci == "-":
            return f"{s['mean']:.3f}"
        how = {"point": " (all equal)", "percentile": " (percentile)"}.get(s.get("ci_method", ""), "")
        return f"{s['mean']:.3f} {ci}{how}{'*' if s.get('small_n') else ''}"

    header = ["method", "n", *metrics, "time_s", "n_forward", "n_backward"]
    body = [
        [
            r["method"],
            str(r["n_videos"]),
            *(cell(r[m]) for m in metrics),
            f"{r['time_s']:.2f}",
            f"{r['n_forward']:.0f}",
            f"{r['n_backward']:.0f}",
        ]
        for r in rows
    ]
    widths = [max(len(x) for x in col) for col in zip(header, *body)]
    for line in [header, *body]:
        print("  ".join(x.ljust(w) for x, w in zip(line, widths)))
    print(f"metric cells: mean [{ci_label('bca')}] over videos (clipped to the metric's range)")
    if small:
        print(f"* {SMALL_N_NOTE} (n = {', '.join(sorted(small, key=int))} videos)")


def _export(
    path: str, store: Any, methods: list[str], metrics: list[str], scope: Any, extra: dict[str, Any]
) -> None:
    from removalx.experiments.frames import EXPORT_COLUMNS
    from removalx.experiments.runner import aggregate

    rows = [
        {k: s[k] for k in EXPORT_COLUMNS}
        for s in store.scores()
        if s["method"] in methods and s["metric"] in metrics and scope.admits(s)
    ]
    _check_export(path)
    if Path(path).suffix.lower() == ".csv":
        from removalx.files.csv_cells import write_csv_rows

        buf = io.StringIO()  # text cells that a spreadsheet would run as formulas are quoted
        write_csv_rows(buf, list(rows[0]) if rows else ["method", "metric", "value"], rows, "\r\n")
        text = buf.getvalue()
    else:
        data = {"scores": rows, "aggregate": aggregate(store, methods, metrics, scope), **extra}
        text = json.dumps(json_clean(data), indent=2, default=str, allow_nan=False)
    write_bytes(path, text.encode("utf-8"), "the export")


def _check_export(path: str | None) -> None:
    """Refuse an ``--export`` name of unknown format before any work is done."""
    if path is None:
        return
    if Path(path).suffix.lower() not in (".csv", ".json"):
        suffix = Path(path).suffix[:20]
        raise ConfigError(
            f"--export {path[:200]}: unknown format {suffix!r}.", "Use a .csv or .json file name."
        )
    check_output_file(path, what="--export")


# -- commands ----------------------------------------------------------------------------------------
def cmd_evaluate(args: argparse.Namespace) -> int:
    """``evaluate``: one recipe over a dataset; per-video scores and mean / 95% CI per metric."""
    from removalx.experiments.runner import recipe_label

    return _present(args, _run(args, "evaluate", [(recipe_label(args.recipe), args.recipe, {})], False))


def cmd_compare(args: argparse.Namespace) -> int:
    """``compare``: several recipes (and random maps) on the same videos; alpha per AUC metric."""
    from removalx.experiments.runner import alpha_table, recipe_label

    recipes = [r.strip() for r in args.recipes.split(",") if r.strip()]
    if not recipes:
        raise ConfigError("--recipes is empty.", "Pass e.g. --recipes lime3d,rise3d.")
    sanity = bool(getattr(args, "sanity", False))
    if sanity:
        from removalx.experiments.sanity import with_sanity_metrics

        args.metrics = with_sanity_metrics(args.metrics)
    out = _run(args, "compare", [(recipe_label(r), r, {}) for r in recipes], not args.no_random)
    return _present(
        args,
        out,
        lambda o: {
            "alpha": alpha_table(o.store, o.methods, o.metrics, scope=o.scope) if not args.no_random else {}
        },
        lambda extra: (
            f"reliability alpha of {k} (STEP Eq. 20-21): {v:.3f}" for k, v in extra["alpha"].items()
        ),
        sanity=sanity,
    )


def cmd_ablate(args: argparse.Namespace) -> int:
    """``ablate``: variants of one recipe differing in one key; paired tests against the first."""
    from removalx.experiments.api import ablate_triples
    from removalx.experiments.comparisons_report import paired_lines
    from removalx.experiments.multiplicity import correct_table
    from removalx.experiments.runner import paired_table

    triples = ablate_triples(args.recipe, args.vary, args.variants)
    warnings = _substrate_check(args, triples)
    out = _run(args, "ablate", triples, False)
    correction = getattr(args, "correction", "holm")
    return _present(
        args,
        out,
        lambda o: {"paired": correct_table(paired_table(o.store, o.methods, o.metrics, o.scope), correction)},
        lambda extra: [*paired_lines(extra["paired"]), *warnings],
    )


def _substrate_check(args: argparse.Namespace, triples: list[tuple[str, str, dict[str, Any]]]) -> list[str]:
    """Add the substrate check's metric copies to ``args`` (unless ``--no-substrate-check``); its warnings."""
    from removalx.experiments.api import substrate_options

    if args.no_substrate_check:
        return []
    opts, warnings = substrate_options(triples, options_from_args(args))
    args.metrics, args.metric_set = opts.metrics, list(opts.metric_set)
    args.substrate_check = list(warnings)  # recorded with the experiment's arguments
    return warnings


def cmd_report(args: argparse.Namespace) -> int:
    """``report``: a self-contained HTML page of a results database."""
    from removalx.experiments.report import write_report

    check_output_file(args.out, what="--out")
    out = write_report(
        args.db,
        args.out,
        max_videos=args.max_videos,
        gallery_scale=args.gallery_scale,
        correction=getattr(args, "correction", "holm"),
    )
    print(out)
    return 0


def cmd_study(args: argparse.Namespace) -> int:
    """``study create | serve | results``: the blind user-rating study (docs/study.md)."""
    from removalx.cli.study import cmd_study as run

    return run(args)


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "evaluate": cmd_evaluate,
    "compare": cmd_compare,
    "ablate": cmd_ablate,
    "report": cmd_report,
    "study": cmd_study,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run one of the four subcommands alone (``python -m removalx.cli.experiments``)."""
    from removalx.errors import RemovalxError

    parser = argparse.ArgumentParser(prog="removalx-experiments")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_subcommands(sub)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return COMMANDS[args.command](args)
    except RemovalxError as exc:
        print(f"removalx: error: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("removalx: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
