"""The ``removalx`` command line.

Exit codes: 0 success; 2 usage error (bad flags); 3 bad input (a ``RemovalxError``:
recipe, plugin, video, model or target); 1 anything else (a bug: please report it); 130
interrupted; 141 (128 + SIGPIPE, as the shell's tools) when the reader of the output went
away (``removalx recipes list | head``), without a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from removalx.cli.common import (
    DEFAULT_MODEL,
    DEFAULT_RECIPE,
    DEFAULT_SIZE,
    EXIT_INPUT,
    EXIT_OK,
    EXIT_USAGE,
    add_action_parser,
    add_model_options,
    add_overrides,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
)
from removalx.errors import truncate

EPILOG = """exit codes: 0 success, 2 usage error, 3 invalid input (recipe, plugin, video, model,
target), 1 internal error, 130 interrupted, 141 output pipe closed. Docs: docs/cli.md"""
#: Exit code when the reader of stdout went away (``| head``): 128 + SIGPIPE, as the shell's tools.
EXIT_PIPE = 141
#: The model adapters ``--model`` accepts (help text).
MODEL_HELP = (
    "model spec: zoo:NAME, torchvision:ARCH, python:MODULE_OR_FILE:FACTORY or hf:FOLDER_OR_CACHED_NAME "
    f"(a Hugging Face video classifier, removalx[hf]); default {DEFAULT_MODEL}"
)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="removalx",
        description="Explain video classifiers by removing parts of the video.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=_version())
    p.add_argument(
        "--strict-plugins",
        action="store_true",
        help="fail (exit 3) when an installed plugin fails to load instead of skipping it "
        "with a warning (same as REMOVALX_STRICT_PLUGINS=1)",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    e = sub.add_parser(
        "explain",
        help="explain one video with a recipe",
        description="Explain a video clip: writes attribution.npz / .npy, an overlay GIF (and MP4/PNG "
        "on request) and summary.json into --out.\n\nThe clip: --frames frames spread evenly over the whole "
        "video (one from the middle of each equal segment), or over the --start/--duration window, read at "
        "the model's native size (--size). --stride takes consecutive frames instead. Paths, devices and "
        "formats are checked before any work.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    e.add_argument(
        "video",
        nargs="?",
        help="video file (.mp4 .avi .webm .gif) or folder of frames; omitted: the bundled demo clip",
    )
    e.add_argument(
        "--recipe",
        "-r",
        default=DEFAULT_RECIPE,
        help=f"built-in name or YAML file (default {DEFAULT_RECIPE})",
    )
    add_overrides(e, "override a recipe key, e.g. --set sample_selection.n_samples=200 (repeatable)")
    add_model_options(
        e,
        model=MODEL_HELP,
        weights="weights file for the model, or 'none' for random weights",
        device="cpu, cuda, cuda:1, mps ... (default: CUDA if available, else the CPU)",
    )
    e.add_argument(
        "--target",
        metavar="N|NAME",
        help="class to explain: an index, or one of the model's class names (default: the top class)",
    )
    e.add_argument("--seed", type=int, help="seed (default: the recipe's)")
    e.add_argument(
        "--batch-size",
        type=positive_int,
        help="perturbed clips per forward pass (default: from free memory, at most 32)",
    )
    e.add_argument(
        "--frames",
        type=positive_int,
        help="frames of the clip (default: the model's native clip length, 16 when unknown)",
    )
    e.add_argument(
        "--start",
        type=non_negative_float,
        metavar="SECONDS",
        help="start of the window the clip is taken from, in seconds (default: the whole video)",
    )
    e.add_argument(
        "--duration",
        type=positive_float,
        metavar="SECONDS",
        help="length of that window in seconds (default: to the end of the video)",
    )
    e.add_argument(
        "--start-frame",
        type=non_negative_int,
        default=0,
        metavar="N",
        help="start of the window as a frame index (for videos without a frame rate)",
    )
    e.add_argument(
        "--stride",
        type=positive_int,
        help="take consecutive frames, every N-th, from the start of the window, instead of "
        "spreading the clip over the window",
    )
    e.add_argument(
        "--size",
        type=positive_int,
        help="resize the short side and centre-crop to SIZE x SIZE (default: the model's native "
        f"input size, {DEFAULT_SIZE} when unknown)",
    )
    e.add_argument(
        "--format",
        default=None,
        help="overlay formats, comma-separated: gif,mp4 (H.264, needs removalx[mp4]),png (default mp4 "
        "when PyAV is installed, else gif; a GIF is kept under 2 MB by shrinking its frames)",
    )
    e.add_argument(
        "--overlay-size",
        choices=("original", "clip"),
        default="original",
        help="draw the overlay on the frames at their original resolution, the map upsampled "
        "(default), or at the size the model saw ('clip')",
    )
    e.add_argument("--out", "-o", default="removalx-out", help="output folder (default ./removalx-out)")
    e.add_argument("--quiet", "-q", action="store_true", help="no progress bar, print only the output folder")

    pl = sub.add_parser(
        "plugins",
        help="list every stage, plugin, source package and config fields",
        description="List installed plugins (built-in and third-party).",
    )
    pl.add_argument("--stage", help="only this stage")
    pl.add_argument("--json", action="store_true", help="machine-readable output")

    _, rs = add_action_parser(
        sub, "recipes", "list, show, validate recipes or print their JSON Schema", "Work with recipes."
    )
    rs.add_parser("list", help="built-in recipes")
    for action, text in (
        ("show", "print a recipe as validated YAML (with defaults filled in)"),
        ("validate", "validate a recipe file; exit 3 with the errors if invalid"),
    ):
        a = rs.add_parser(action, help=text)
        a.add_argument("recipe")
        add_overrides(a)
    rs.add_parser("schema", help="JSON Schema of recipes (for editors)")

    _, zs = add_action_parser(
        sub,
        "zoo",
        "built-in demo models trained on synthetic videos",
        "List or retrain the zoo's demo models.",
    )
    zs.add_parser("list", help="models with their held-out accuracy")
    zt = zs.add_parser("train", help="train a zoo model on freshly generated synthetic clips")
    zt.add_argument("name")
    zt.add_argument("--seed", type=int, default=0)
    zt.add_argument("--out", help="folder for weights + metadata (default: the package's weights folder)")

    from removalx.cli.experiments import add_subcommands
    from removalx.cli.finetune import add_finetune_parser

    add_subcommands(sub)
    add_finetune_parser(sub)
    return p


def _version() -> str:
    from removalx import __version__

    return f"removalx {__version__}"


# -- commands ---------------------------------------------------------------------------
def cmd_explain(args: argparse.Namespace) -> int:
    from removalx.cli.explain import run_explain

    return run_explain(args)


def cmd_plugins(args: argparse.Namespace) -> int:
    from removalx.core.registry import STAGES, get_registry

    reg = get_registry()
    stages = [args.stage] if args.stage else list(STAGES)
    rows: list[dict[str, Any]] = []
    for stage in stages:
        for spec in reg.specs(stage):
            fields = {
                k: {"type": _type_name(f.annotation), "default": _jsonable(f.default)}
                for k, f in spec.config.model_fields.items()
            }
            rows.append(
                {
                    "stage": stage,
                    "name": spec.name,
                    "status": "ok",
                    "source": spec.source,
                    "module": spec.module,
                    "summary": spec.summary,
                    "fields": fields,
                }
            )
    # plugins that failed to load: all of them, or those known to provide a plugin of --stage
    failed = [
        f
        for f in reg.failures
        if not args.stage or not f.provides or any(s == args.stage for s, _ in f.provides)
    ]
    if args.json:
        rows += [
            {
                "stage": None,
                "name": None,
                "status": "failed",
                "source": f.distribution,
                "module": f.value,
                "summary": f"failed to load: {f.error}",
                "fields": {},
                **f.to_dict(),
            }
            for f in failed
        ]
        print(json.dumps(rows, indent=2, default=str))
        return EXIT_OK
    current = None
    for row in rows:
        if row["stage"] != current:
            current = row["stage"]
            print(f"\n{current}:")
        print(f"  {row['name']:<16} [{row['source']}] {row['summary']}")
        for k, f in row["fields"].items():
            print(f"      {k}: {f['type']} = {f['default']!r}")
    if failed:
        print("\nfailed to load:")
        for failure in failed:
            print(f"  {failure.entry_point} = {failure.value} [{failure.distribution}]")
            print(f"      {failure.reason}")
            if failure.provides:
                print(f"      provides: {', '.join(f'{s} {n}' for s, n in failure.provides)}")
    return EXIT_OK


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def _jsonable(v: Any) -> Any:
    try:
        json.dumps(v)
        return v
    except TypeError:
        return repr(v)


def cmd_recipes(args: argparse.Namespace) -> int:
    from removalx.core.recipe import builtin_recipes, load_recipe, recipe_model

    if args.action in (None, "list"):
        from removalx.errors import RemovalxError

        for name, path in builtin_recipes().items():
            try:
                print(f"{name:<16} {load_recipe(path).reference}")
            except RemovalxError as exc:  # e.g. a plugin it needs is not installed
                print(f"{name:<16} (unusable here: {exc.what.splitlines()[0]})")
        return EXIT_OK
    if args.action == "show":
        print(load_recipe(args.recipe, overrides=args.overrides).to_yaml(), end="")
        return EXIT_OK
    if args.action == "validate":
        from removalx.core.compatibility import check_stages_fit

        r = load_recipe(args.recipe, overrides=args.overrides)
        check_stages_fit(r)  # stages that each validate may still not fit together
        print(f"{truncate(str(args.recipe), 200)}: valid recipe {truncate(r.name, 80)!r}")
        return EXIT_OK
    if args.action == "schema":
        print(json.dumps(recipe_model().model_json_schema(), indent=2))
        return EXIT_OK
    return EXIT_USAGE


def cmd_zoo(args: argparse.Namespace) -> int:
    from removalx.zoo import models as zoo_models

    if args.action in (None, "list"):
        rows = zoo_models.list_zoo(bench=True)
        width = max(len(str(r["name"])) for r in rows) + 1
        for row in rows:
            acc = row.get("val_accuracy")
            acc_s = f"{100 * acc:.1f}%" if isinstance(acc, (int, float)) else "untrained"
            p = row.get("top1_prob_median")
            p_s = f"median p {p:.2f}" if isinstance(p, (int, float)) else "median p  -  "
            print(
                f"{row['name']:<{width}} held-out accuracy {acc_s:<9} {p_s}  {row.get('params', '?')} params  "
                f"{row.get('description', '')}"
            )
        return EXIT_OK
    if args.name.startswith("bench_"):
        from removalx.zoo.bench.train import train_bench

        info = train_bench(args.name, seed=args.seed, out_dir=args.out)
        print(json.dumps(info, indent=2, default=str))
        return EXIT_OK if info["interventions"]["passed"] else EXIT_USAGE
    from removalx.zoo.train import train

    info = train(args.name, seed=args.seed, out_dir=args.out)
    print(json.dumps(info, indent=2, default=str))
    return EXIT_OK


def _commands() -> dict[str, Any]:
    from removalx.cli.experiments import COMMANDS as EXPERIMENT_COMMANDS
    from removalx.cli.finetune import cmd_finetune

    return {
        "explain": cmd_explain,
        "finetune": cmd_finetune,
        "plugins": cmd_plugins,
        "recipes": cmd_recipes,
        "zoo": cmd_zoo,
        **EXPERIMENT_COMMANDS,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``removalx`` command; returns the exit code."""
    from removalx.errors import RemovalxError

    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    strict_env = _strict_plugins_on() if args.strict_plugins else None
    try:
        _check_plugins_if_strict()
        code = _commands()[args.command](args)
        sys.stdout.flush()  # here, not at exit: a closed pipe is handled below
        return code
    except BrokenPipeError:
        return _pipe_closed()
    except RemovalxError as exc:
        print(f"removalx: error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("removalx: interrupted", file=sys.stderr)
        return 130
    finally:
        if args.strict_plugins:
            _strict_plugins_restore(strict_env)


def _pipe_closed() -> int:
    """The reader of stdout went away (``| head``): stop quietly, like the shell's tools.

    stdout is pointed at ``os.devnull`` so that Python's own flush at exit does not fail again
    (the recipe of the Python docs, "Note on SIGPIPE").
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no file descriptor (a replaced sys.stdout): nothing to flush
        pass
    return EXIT_PIPE


def _strict_plugins_on() -> str | None:
    """Turn strict plugin loading on for this command; returns the previous variable's value."""
    from removalx.core.registry import STRICT_ENV

    previous = os.environ.get(STRICT_ENV)
    os.environ[STRICT_ENV] = "1"  # read by get_registry(), also by worker processes
    return previous


def _check_plugins_if_strict() -> None:
    """In strict mode, fail every command (not only those that use plugins) if one failed to load."""
    from removalx.core.registry import get_registry, strict_plugins

    if strict_plugins():
        get_registry()  # raises PluginError naming the broken plugins


def _strict_plugins_restore(previous: str | None) -> None:
    from removalx.core.registry import STRICT_ENV

    if previous is None:
        os.environ.pop(STRICT_ENV, None)
    else:
        os.environ[STRICT_ENV] = previous


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
