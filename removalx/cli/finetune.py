"""``removalx finetune``: fine-tune a video classifier by K-fold cross-validation.

The work is :func:`removalx.experiments.finetune.finetune`; this module parses the options and
prints the per-fold accuracies, their mean and interval, and the weights file to pass to
``removalx explain --weights``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from removalx.cli.common import EXIT_OK, json_clean

__all__ = ["add_finetune_parser", "cmd_finetune"]

#: Options that map one to one onto fields of :class:`~removalx.experiments.finetune.FinetuneConfig`.
_FIELDS = (
    "epochs",
    "folds",
    "lr",
    "momentum",
    "weight_decay",
    "batch_size",
    "grad_clip",
    "flip",
    "head",
    "final",
    "frames",
    "size",
    "n_videos",
    "seed",
)


def add_finetune_parser(subparsers: Any) -> None:
    """Add ``finetune`` to an argparse subparsers object."""
    p = subparsers.add_parser(
        "finetune",
        help="fine-tune a model on a labelled dataset (K-fold cross-validation)",
        description="Swap the model's head for the dataset's classes, fine-tune it on each of "
        "K folds (removal paper Sec. 4.3: 10 epochs, K=5; optimiser of the authors' code), print "
        "each fold's held-out accuracy and their mean, and write OUT/model.pt for "
        "`removalx explain --model SPEC --weights OUT/model.pt`. Rerun to resume.",
    )
    p.add_argument(
        "--model", "-m", required=True, help="model spec: torchvision:ARCH, python:FILE:FACTORY, hf:FOLDER"
    )
    p.add_argument("--weights", help="initial weights (e.g. Kinetics-400) loaded before the head swap")
    p.add_argument("--device", help="cpu, cuda, cuda:0, ... (default: CUDA when available)")
    p.add_argument(
        "--dataset", required=True, help="folder of labelled clips, kinetics:FILE.csv or ucf101:LIST.txt"
    )
    p.add_argument("--video-root", help="folder of the clips of an annotation file")
    p.add_argument("--classes", help="Kinetics class names file (one per line)")
    p.add_argument("--out", required=True, help="folder for model.pt, finetune.json and the checkpoint")
    p.add_argument("--epochs", type=int, help="epochs per fold (default 10, paper)")
    p.add_argument("--folds", type=int, help="K (default 5, paper)")
    p.add_argument("--stratified", action="store_true", default=None, help="stratify folds by label")
    p.add_argument("--lr", type=float, help="SGD learning rate (default 7.8125e-05, authors' code)")
    p.add_argument("--momentum", type=float)
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--batch-size", type=int, help="clips per step (default 10)")
    p.add_argument("--grad-clip", type=float, help="max gradient norm, 0 = off (default 40)")
    p.add_argument("--flip", type=float, help="horizontal flip probability (default 0.5)")
    p.add_argument("--head", help="dotted path of the layer to replace (default fc/head/classifier)")
    p.add_argument("--final", choices=("all", "best_fold"), help="weights written (default all)")
    p.add_argument("--frames", type=int, help="frames read per clip (default 16)")
    p.add_argument("--size", type=int, help="side clips are read at (default 112)")
    p.add_argument("--n-videos", type=int, help="use only the first N clips")
    p.add_argument("--seed", type=int, help="one seed for folds, head, order, flips (default 0)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars")


def _config(args: argparse.Namespace) -> Any:
    from pydantic import ValidationError

    from removalx.errors import ConfigError, truncate
    from removalx.experiments.finetune import FinetuneConfig

    given = {f: getattr(args, f) for f in _FIELDS if getattr(args, f) is not None}
    if args.stratified:
        given["stratified"] = True
    try:
        return FinetuneConfig(**given)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise ConfigError(
            f"--{where.replace('_', '-')}: {truncate(err['msg'], 120)}.",
            "See `removalx finetune --help` and docs/models.md, 'Fine-tuning'.",
        ) from None


def cmd_finetune(args: argparse.Namespace) -> int:
    """Run ``removalx finetune``; print the summary as JSON on stdout."""
    from removalx.experiments.finetune import finetune

    data_options = {k: getattr(args, k) for k in ("video_root", "classes") if getattr(args, k)}
    summary = finetune(
        args.model,
        args.dataset,
        args.out,
        weights=args.weights,
        device=args.device,
        config=_config(args),
        data_options=data_options,
        progress=not args.quiet,
    )
    accs = ", ".join(f"{a:.3f}" for a in summary["fold_accuracy"])
    print(
        f"held-out accuracy per fold: {accs}; mean {summary['mean_accuracy']:.3f} "
        f"({summary['ci_label']} [{summary['ci_low']:.3f}, {summary['ci_high']:.3f}])",
        file=sys.stderr,
    )
    print(
        f"explain it: removalx explain --model {args.model} --weights {summary['weights']}", file=sys.stderr
    )
    print(json.dumps(json_clean(summary), indent=2))
    return EXIT_OK
