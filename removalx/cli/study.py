"""``removalx study create | serve | results`` (docs/study.md)."""

from __future__ import annotations

import argparse
import io
import json
import math
import sys
from typing import Any

from removalx.cli.common import (
    add_action_parser,
    add_model_options,
    add_overrides,
    from_args,
    json_clean,
    positive_float,
    positive_int,
)

__all__ = ["add_study_parser", "cmd_study"]


def _port(text: str) -> int:
    value = positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"a port is 1..65535, got {value}")
    return value


def _seed(text: str) -> int:
    """A study seed: a whole number of at most 2**63 - 1 in absolute value (an SQLite INTEGER)."""
    from removalx.experiments.study.create import MAX_SEED

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text[:40]!r}") from None
    if abs(value) > MAX_SEED:
        raise argparse.ArgumentTypeError(
            f"expected a whole number of at most {MAX_SEED} in absolute value, got {text[:40]}"
        )
    return value


def _raters(text: str | None) -> list[str]:
    """The ids of ``--raters`` (none when not given); an empty list or entry is refused."""
    from removalx.experiments.study import StudyError

    if text is None:
        return []
    out = [x.strip() for x in text.split(",")]
    if not any(out) or not all(out):
        raise StudyError(
            f"--raters {text[:80]!r} has an empty rater id: expected comma-separated ids.",
            "Pass e.g. --raters alice,bob, or leave --raters out (raters then enter an id on 127.0.0.1).",
        )
    return out


def _list(text: str | None) -> list[str] | None:
    if text is None:
        return None
    out = [x.strip() for x in text.split(",") if x.strip()]
    return out or None


_DB = "experiment database holding the study"


def _action(
    sub: Any, name: str, db: str = _DB, study: str = "name of the study", **kw: str
) -> argparse.ArgumentParser:
    """Add action ``name`` (``kw``: its help and description) with ``--db`` and ``--name`` (helps ``db``, ``study``)."""
    p: argparse.ArgumentParser = sub.add_parser(name, **kw)
    p.add_argument("--db", required=True, help=db)
    p.add_argument("--name", required=True, help=study)
    return p


def add_study_parser(subparsers: Any) -> None:
    """Add ``study`` with its actions ``create``, ``serve`` and ``results``."""
    s, sub = add_action_parser(
        subparsers,
        "study",
        help="blind user-rating study of stored explanations (create, serve, results)",
        description="A panel of raters scores explanations on 'Do the highlighted regions used in the "
        "classification seem reasonable?' from -2 to +2, blind to method, model and dataset "
        "(removal-based video explanations, Sec. 4.6.2). See docs/study.md.",
    )
    c = _action(
        sub,
        "create",
        help="build a study from the explanations in --db (or explain videos now with --recipes)",
        description="Fix the items (video x method x model) and render each once. Without --recipes, "
        "every stored method but the random baseline on the videos they share; with --recipes, the "
        "first --videos clips of --dataset explained with each recipe (stored explanations with the "
        "same recipe, model and clip are reused, as in evaluate).",
        db="experiment database (SQLite, from evaluate/compare)",
        study="name of the study (unique in the database)",
    )
    c.add_argument("--recipes", help="comma-separated recipes to show (explained now where missing)")
    c.add_argument("--videos", type=positive_int, help="number of videos (default: all stored / 8)")
    c.add_argument(
        "--seed", type=_seed, default=0, help="seed of the video choice and rater orders (default 0)"
    )
    c.add_argument("--raters", help="comma-separated rater ids: each gets an invite link with a token")
    c.add_argument("--dataset", help="dataset key (stored) or spec (with --recipes; default zoo:synthetic)")
    c.add_argument("--models", help="comma-separated stored model keys to include (default: all)")
    add_model_options(
        c,
        "model of --recipes (default %(default)s)",
        "weights file of --model",
        "cpu, cuda, ... (with --recipes)",
        default="zoo:r3d_tiny",
    )
    c.add_argument(
        "--frames", type=positive_int, default=16, help="frames per clip with --recipes (default 16)"
    )
    c.add_argument("--size", type=positive_int, default=112, help="frame size with --recipes (default 112)")
    c.add_argument(
        "--data-seed", type=int, default=0, help="first zoo:synthetic seed with --recipes (default 0)"
    )
    add_overrides(c, "recipe override")
    c.add_argument("--recipe-seed", type=int, help="recipe seed with --recipes (default: each recipe's)")
    c.add_argument("--batch-size", type=positive_int, help="perturbed clips per forward pass")
    c.add_argument("--fps", type=positive_float, default=6.0, help="playback speed of the media (default 6)")
    c.add_argument("--host", default="127.0.0.1", help="host of the printed invite links (default 127.0.0.1)")
    c.add_argument("--port", type=_port, default=8000, help="port of the printed invite links (default 8000)")
    c.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    v = _action(
        sub,
        "serve",
        help="serve the rating app (127.0.0.1 unless --host)",
        description="Serve the study to raters in a browser. Binds 127.0.0.1 by default; any other "
        "--host exposes it to the network: then only invite links (tokens) are accepted.",
    )
    v.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    v.add_argument("--port", type=_port, default=8000, help="port (default 8000)")
    v.add_argument(
        "--require-tokens", action="store_true", help="accept invite links only, also on 127.0.0.1"
    )
    r = _action(
        sub,
        "results",
        help="mean score with 95%% CI per method and model, answer distribution, agreement",
        description="Per method, model and dataset: mean score (-2..+2) with its 95%% CI over items, "
        "the distribution of answers; Krippendorff's alpha (ordinal) and pairwise agreement.",
    )
    fmt = r.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print JSON")
    fmt.add_argument("--csv", action="store_true", help="print CSV (one row per group, then agreement)")
    s.set_defaults(study_parser=s)


def cmd_study(args: argparse.Namespace) -> int:
    """Run ``study create``, ``serve`` or ``results``."""
    if args.action is None:
        args.study_parser.print_help()
        return 2
    return {"create": _create, "serve": _serve, "results": _results}[args.action](args)


def _create(args: argparse.Namespace) -> int:
    from removalx.experiments.study.create import StudySpec, create_study, describe, invite_url
    from removalx.files.outputs import check_output_file

    check_output_file(args.db, what="--db")
    spec = from_args(
        StudySpec,
        args,
        recipes=_list(args.recipes),
        raters=_raters(args.raters),
        models=_list(args.models),
        overrides=list(args.overrides),
        progress=not args.quiet,
    )
    items, tokens = create_study(args.db, spec)
    print(f"study {args.name!r} created in {args.db}: {describe(items)}")
    for rater, token in tokens.items():
        print(f"invite {rater}: {invite_url(args.host, args.port, token)}")
    host = "" if args.host == "127.0.0.1" else f" --host {args.host}"  # where the invite links point
    print(f"serve it with: removalx study serve --db {args.db} --name {args.name}{host} --port {args.port}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from removalx.experiments.study import require
    from removalx.experiments.study.app import LOOPBACK, make_app
    from removalx.experiments.study.create import invite_url
    from removalx.experiments.study.db import StudyDB

    require("uvicorn", "removalx study serve")
    import uvicorn

    local = args.host in LOOPBACK
    tokens_required = args.require_tokens or not local
    if not local:
        print(
            f"removalx: warning: serving on {args.host}, reachable from other machines; only invite links "
            "(rater tokens) are accepted. The connection is plain HTTP: use a trusted network.",
            file=sys.stderr,
        )
    hosts = ["*"] if args.host in ("0.0.0.0", "::", "") else sorted({args.host, "127.0.0.1", "localhost"})
    app = make_app(args.db, args.name, tokens_required=tokens_required, hosts=hosts)
    sdb: StudyDB = app.state.study_db
    shown = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    print(f"serving study {args.name!r} on http://{shown}:{args.port}/ (Ctrl-C stops)", flush=True)
    for r in sdb.raters(args.name):
        print(f"invite {r['rater']}: {invite_url(shown, args.port, r['token'])}", flush=True)
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    finally:
        sdb.close()
    return 0


def _fmt(v: Any) -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.3f}"


def load_results(db: str, name: str) -> dict[str, Any]:
    """:func:`~removalx.experiments.study.results.study_results` of study ``name`` in ``db`` (read-only)."""
    from removalx.experiments.study.db import StudyDB
    from removalx.experiments.study.results import study_results

    sdb = StudyDB(db, read_only=True)
    try:
        sdb.study(name)
        items = sdb.items(name)
        res = study_results(items, sdb.answers(name), [r["rater"] for r in sdb.raters(name)])
    finally:
        sdb.close()
    res["study"] = name
    return res


def _csv(res: dict[str, Any]) -> str:
    """``study results --csv``: one row per group, then the agreement rows (cells guarded)."""
    from removalx.experiments.study.results import GROUPS, SCORES
    from removalx.files.csv_cells import write_csv_rows

    cols = ["by", "group", "n_answers", "n_items", "n_raters", "mean", "ci_low", "ci_high"]
    rows: list[list[Any]] = []
    for key in GROUPS:
        for g in res["groups"][key]:
            rows.append(
                [
                    *(json_clean(g[c]) for c in cols),
                    *(g["distribution"][str(s)] for s in SCORES),
                    g["ci_method"],
                    g["small_n"],
                ]
            )
    ag = res["agreement"]
    for label, value in (
        ("krippendorff_alpha_ordinal", res["alpha_ordinal"]),
        ("pairwise_exact", ag["exact"]),
        ("pairwise_within_one", ag["within_one"]),
    ):
        rows.append(
            ["agreement", label, res["n_answers"], res["n_items"], res["n_raters"], json_clean(value)]
        )
    buf = io.StringIO()
    write_csv_rows(buf, [*cols, *(f"n_{s:+d}" if s else "n_0" for s in SCORES), "ci_method", "small_n"], rows)
    return buf.getvalue()


def _ci_cell(g: dict[str, Any]) -> str:
    """The interval of a group: ``[lo, hi]``, ``(all equal)`` when it is the point, ``*`` when n is small."""
    from removalx.experiments.stats import format_interval

    text = format_interval({**g, "small_n": False}, digits=2)
    if text == "-":
        return text
    how = {"point": " (all equal)", "percentile": " (percentile)"}.get(g.get("ci_method", ""), "")
    return f"{text}{how}{'*' if g.get('small_n') else ''}"


def _results(args: argparse.Namespace) -> int:
    from removalx.experiments.stats import SMALL_N_NOTE, ci_label
    from removalx.experiments.study.results import GROUPS, SCORES

    res = load_results(args.db, args.name)
    if args.json:
        print(json.dumps(json_clean(res), indent=2, allow_nan=False))
        return 0
    if args.csv:
        sys.stdout.write(_csv(res))
        return 0
    if res["n_answers"] == 0:
        print(f"study {args.name!r}: {res['n_items']} items, {res['n_raters']} raters, no answers yet.")
        return 0
    print(
        f"study {args.name!r}: {res['n_items']} items, {res['n_raters']} raters, {res['n_answers']} answers "
        "(scores -2 strongly disagree .. +2 strongly agree)"
    )
    for key in GROUPS:
        rows = res["groups"][key]
        header = [key, "n", "mean", "95% CI", *(f"{s:+d}" if s else "0" for s in SCORES)]
        body = [
            [
                g["group"],
                str(g["n_answers"]),
                _fmt(g["mean"]),
                _ci_cell(g),
                *(str(g["distribution"][str(s)]) for s in SCORES),
            ]
            for g in rows
        ]
        widths = [max(len(x) for x in col) for col in zip(header, *body)]
        print()
        for line in [header, *body]:
            print("  ".join(x.ljust(w) for x, w in zip(line, widths)))
    print()
    print(f"95% CI: {ci_label('bca')} of the mean over items (item = mean over its raters), inside [-2, 2]")
    small = sorted(
        {
            g["n_items"]
            for key in GROUPS
            for g in res["groups"][key]
            if g.get("small_n") and _ci_cell(g) != "-"
        }
    )
    if small:
        print(f"* {SMALL_N_NOTE} (n = {', '.join(map(str, small))} items)")
    ag = res["agreement"]
    print()
    print(f"Krippendorff's alpha (ordinal): {_fmt(res['alpha_ordinal'])}")
    print(f"pairwise agreement: exact {_fmt(ag['exact'])}, within one step {_fmt(ag['within_one'])}")
    for p in ag["pairs"]:
        print(
            f"  {p['raters'][0]} / {p['raters'][1]}: {p['n_items']} items, exact {_fmt(p['exact'])}, "
            f"within one {_fmt(p['within_one'])}"
        )
    return 0
