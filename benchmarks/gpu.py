#!/usr/bin/env python
"""Every built-in recipe on a CUDA device: overhead, autocast, agreement with the CPU, syncs.

For each built-in recipe on torchvision ``r3d_18`` (random weights: the cost does not depend
on them) at 16x112x112, the synthetic zoo clip, batch ``--batch-size``:

* **ratio** = explain time without segmentation ÷ time of as many pure forward passes of
  random clips at the same batch size (``torch.inference_mode``), in fp32 and under
  ``torch.autocast`` in bf16 and fp16 (a recipe whose autocast run fails, e.g. a gradient
  recipe whose backward does not support the dtype, is marked ``n/a``);
* **CPU check**: the same recipe on a smaller clip (``--check-size``, default 8x56x56, fewer
  samples) on the device and on the CPU; ``max|device - cpu| / max|cpu|`` of the attribution
  must be at most ``--tol`` (1e-4 in fp32 with TF32 off; autocast runs are not checked, their
  rounding is the dtype's);
* **syncs/batch**: host-device synchronisations while the fp32 explanation runs, counted as
  the warnings of ``torch.cuda.set_sync_debug_mode("warn")``, divided by the number of
  batches (``ceil(n_forward / batch)``; the stage timer's explicit ``torch.cuda.synchronize``
  calls are not counted by the debug mode).

Recipes run in the order of :func:`removalx.builtin_recipes`; once ``--budget`` seconds (280)
have passed the rest are listed as skipped, so a run ends within 5 minutes. One table is
printed. ``--device cpu --smoke`` runs the same code on the CPU with a tiny model and clip and
two recipes (the test of this script, tests/test_gpu_script.py); nothing beyond the dev extras
(torchvision) is needed.

``python benchmarks/gpu.py`` (CUDA) | ``python benchmarks/gpu.py --device cpu --smoke``
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import torch

import removalx
from removalx.testing import ToyClassifier

DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
SMOKE_RECIPES = ("lime3d", "occlusion3d")
#: Exit code of a user mistake (as the removalx command line).
USAGE = 3


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda", help="cuda (default), cuda:N, or cpu (with --smoke)")
    p.add_argument("--smoke", action="store_true", help="tiny model and clip, two recipes")
    p.add_argument("--recipes", default=None, help="comma-separated built-in recipes (default: all)")
    p.add_argument("--dtypes", default="fp32,bf16,fp16", help="of fp32, bf16, fp16")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--samples", type=int, default=64, help="samples / segments of the timed runs")
    p.add_argument("--check-samples", type=int, default=16, help="samples / segments of the CPU check")
    p.add_argument("--check-size", default="8x56x56", help="TxHxW of the CPU check's clip")
    p.add_argument("--tol", type=float, default=1e-4, help="largest max|device-cpu|/max|cpu| in fp32")
    p.add_argument("--budget", type=float, default=280.0, help="seconds after which recipes are skipped")
    return p.parse_args(argv)


def usage_error(message: str, fix: str) -> SystemExit:
    """A one-line message on stderr and exit code 3 (no traceback)."""
    print(f"error: {message}\n  fix: {fix}", file=sys.stderr)
    return SystemExit(USAGE)


def check_args(args: argparse.Namespace) -> tuple[torch.device, list[str], list[str], tuple[int, int, int]]:
    """The device, recipes, dtypes and check clip size, or a usage error."""
    try:
        device = torch.device(args.device)
    except RuntimeError:
        raise usage_error(
            f"--device {args.device[:40]!r} is not a device.", "Pass cuda, cuda:N or cpu."
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise usage_error(
            "--device cuda given, but this machine has no CUDA device.",
            "Run on a GPU machine, or try the script's CPU path with --device cpu --smoke.",
        )
    if device.type not in ("cuda", "cpu"):
        raise usage_error(
            f"--device {args.device[:40]!r}: expected cuda or cpu.", "Pass cuda, cuda:N or cpu."
        )
    if device.type == "cpu" and not args.smoke:
        raise usage_error(
            "--device cpu measures nothing about a GPU; it is only the smoke test of this script.",
            "Add --smoke, or run on a CUDA device.",
        )
    known = removalx.builtin_recipes()
    default = SMOKE_RECIPES if args.smoke else tuple(known)
    recipes = args.recipes.split(",") if args.recipes else list(default)
    unknown = [r for r in recipes if r not in known]
    if unknown:
        raise usage_error(
            f"--recipes: unknown recipe(s) {', '.join(unknown)[:200]}.", "See removalx recipes."
        )
    dtypes = args.dtypes.split(",")
    if not dtypes or any(d not in DTYPES for d in dtypes):
        raise usage_error(
            f"--dtypes {args.dtypes[:60]!r}: expected a list of fp32, bf16, fp16.", "E.g. fp32,bf16."
        )
    try:
        size = tuple(int(v) for v in args.check_size.lower().split("x"))
    except ValueError:
        size = ()
    if len(size) != 3 or min(size) < 1:
        raise usage_error(f"--check-size {args.check_size[:40]!r}: expected TxHxW.", "E.g. 8x56x56.")
    if args.batch_size < 1 or args.samples < 1 or args.check_samples < 1 or args.tol <= 0:
        raise usage_error("--batch-size, --samples, --check-samples and --tol must be positive.", "E.g. 16.")
    return device, recipes, dtypes, (size[0], size[1], size[2])


def make_model(smoke: bool) -> tuple[torch.nn.Module, dict[str, Any]]:
    """r3d_18 with random weights (torchvision), or the tiny test model for ``--smoke``."""
    if smoke:
        return ToyClassifier(n_classes=3, seed=1), {}
    from torchvision.models.video import r3d_18

    torch.manual_seed(0)
    return r3d_18(weights=None), {"mean": (0.43216, 0.394666, 0.37645), "std": (0.22803, 0.22145, 0.216989)}


def small_overrides(name: str, n: int) -> dict[str, int]:
    """``n`` samples (sampling recipes) or ``n`` segments (SLIC recipes) where the recipe has them."""
    recipe = removalx.load_recipe(name)
    out = {}
    for key in ("sample_selection.n_samples", "segmentation.n_segments"):
        stage, field = key.split(".")
        cfg = recipe.stage(stage) if hasattr(recipe, "stage") else None
        if cfg is not None and getattr(cfg, field, None) is not None:
            out[key] = n
    return out


@contextlib.contextmanager
def count_syncs(device: torch.device) -> Iterator[list[int]]:
    """Count CUDA synchronisations (sync debug mode warnings) inside the block: ``box[0]``."""
    box = [0]
    if device.type != "cuda":
        yield box
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            yield box
        finally:
            torch.cuda.set_sync_debug_mode("default")
    box[0] = sum("synchroniz" in str(w.message).lower() for w in caught)


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager[Any]:
    return contextlib.nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def explain(
    name: str, clf: removalx.VideoClassifier, clip: torch.Tensor, n: int, bs: int
) -> removalx.Attribution:
    ex = removalx.Explainer.from_recipe(name, seed=0, overrides=small_overrides(name, n), progress=False)
    out = ex.explain(clf, clip, target=0, batch_size=bs)
    assert isinstance(out, removalx.Attribution)
    return out


def forward_time(clf: removalx.VideoClassifier, clip: torch.Tensor, n: int, bs: int, dtype: Any) -> float:
    """Seconds of ``n`` forward passes of random clips in batches of ``bs``."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand((bs, *clip.shape), generator=g).to(clf.device)
    with torch.inference_mode(), autocast(clf.device, dtype):
        clf(x[:1])  # warm-up
        sync(clf.device)
        t0 = time.perf_counter()
        done = 0
        while done < n:
            k = min(bs, n - done)
            clf(x[:k])
            done += k
        sync(clf.device)
    return time.perf_counter() - t0


def timed_row(
    name: str, clf: Any, clip: torch.Tensor, args: argparse.Namespace, dtype: Any
) -> dict[str, Any]:
    """Ratio explain / forward (and syncs per batch in fp32) of one recipe in one dtype."""
    with autocast(clf.device, dtype), count_syncs(clf.device) as syncs:
        attr = explain(name, clf, clip, args.samples, args.batch_size)
    t = attr.meta["timings"]
    seconds = sum(t.values()) - t.get("segmentation", 0.0)
    n_fwd = int(attr.meta.get("n_forward", 0)) or 1
    fwd = forward_time(clf, clip, n_fwd, args.batch_size, dtype)
    batches = math.ceil(n_fwd / args.batch_size)
    return {"s": seconds, "ratio": seconds / fwd, "n_forward": n_fwd, "syncs": syncs[0] / batches}


def cpu_check(
    name: str, module: Any, norm: dict, device: torch.device, args: argparse.Namespace, size: Any
) -> float:
    """``max|device - cpu| / max|cpu|`` of the attribution on the check clip (fp32)."""
    from removalx.zoo.data import make_clip

    t, h, w = size
    clip = torch.nn.functional.interpolate(
        make_clip(0, seed=0, frames=16, size=112).video.permute(3, 0, 1, 2)[None],
        size=(t, h, w),
        mode="trilinear",
    )[0].permute(1, 2, 3, 0)
    vals = []
    for dev in (device, torch.device("cpu")):
        clf = removalx.VideoClassifier(module.to(dev), **norm)
        vals.append(explain(name, clf, clip, args.check_samples, args.batch_size).values.float().cpu())
    module.to(device)
    return float((vals[0] - vals[1]).abs().max() / vals[1].abs().max().clamp_min(1e-12))


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    device, recipes, dtypes, size = check_args(args)
    if device.type == "cuda":
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    module, norm = make_model(args.smoke)
    clf = removalx.VideoClassifier(module.to(device), **norm)
    from removalx.zoo.data import make_clip

    clip = make_clip(0, seed=0, frames=4 if args.smoke else 16, size=16 if args.smoke else 112).video
    size = (4, 16, 16) if args.smoke else size
    start, rows = time.perf_counter(), []
    for name in recipes:
        row: dict[str, Any] = {"recipe": name}
        rows.append(row)
        if len(rows) > 1 and time.perf_counter() - start > args.budget:  # the first always runs
            row["note"] = "skipped (budget)"
            continue
        for d in dtypes:
            row[d] = guarded(partial(timed_row, name, clf, clip, args, DTYPES[d]))
        row["err"] = guarded(partial(cpu_check, name, module, norm, device, args, size))
    print_table(rows, dtypes, args, device)
    return rows


def guarded(fn: Callable[[], Any]) -> Any:
    """``fn()``, or the exception's first line (a recipe that cannot run in this setting)."""
    try:
        return fn()
    except Exception as exc:
        return f"n/a: {type(exc).__name__}: {str(exc).splitlines()[0][:80] if str(exc) else ''}"


def print_table(
    rows: list[dict[str, Any]], dtypes: list[str], args: argparse.Namespace, device: torch.device
) -> None:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu (smoke)"
    print(
        f"{name}, torch {torch.__version__}, batch {args.batch_size}, {args.samples} samples, tol {args.tol:g}"
    )
    head = ["recipe", *(f"ratio {d}" for d in dtypes), "syncs/batch (fp32)", "max rel err vs cpu", "ok"]
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for row in rows:
        if "note" in row:
            print(f"| {row['recipe']} | {row['note']} |")
            continue
        cells = [row["recipe"]]
        for d in dtypes:
            cells.append(f"{row[d]['ratio']:.3f}" if isinstance(row[d], dict) else str(row[d]))
        fp32 = row.get("fp32")
        cells.append(f"{fp32['syncs']:.1f}" if isinstance(fp32, dict) and device.type == "cuda" else "-")
        err = row["err"]
        cells.append(f"{err:.2e}" if isinstance(err, float) else str(err))
        cells.append("yes" if isinstance(err, float) and err <= args.tol else "NO")
        print("| " + " | ".join(cells) + " |")


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    return run(parse_args(argv))


if __name__ == "__main__":
    main()
