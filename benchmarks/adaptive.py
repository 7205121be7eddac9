"""Forward passes of ``adaptive`` sample selection at the error of the fixed 1000-sample recipes.

For each recipe (``kernelshap3d``, ``lime3d``, ``rise3d``; and ``leverage_shap3d`` sampled
adaptively against ``kernelshap3d``'s fixed error), on a zoo synthetic clip
(``removalx.zoo.data.make_clip``) explained with a zoo model: a reference attribution from
``--reference`` samples (seed 0) stands for the exact values; the fixed recipe with
``--fixed`` samples (seeds 1..``--seeds``) gives the error to match (RMSE of the feature
values against the reference); ``adaptive`` with ``tolerance`` = that error (every feature's
standard error at most the tolerance) reports the forward passes it used, the error it
reached and whether the tolerance was met. Passes count perturbed samples (the base cases
are the same for both). The largest standard error of any feature is a stricter criterion than
the RMSE over features, so with ``--calibrate`` a second row per recipe reruns ``adaptive``
with the tolerance scaled by ``fixed RMSE / adaptive RMSE`` of the first row: the passes
``adaptive`` needs for (about) the fixed recipe's error.

Run: ``python benchmarks/adaptive.py [--model r3d_tiny_ls] [--segments 40] [--seeds 3] [--calibrate]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import removalx
from removalx.zoo.data import make_clip
from removalx.zoo.models import load_zoo_model

PAIRS = [  # (recipe sampled adaptively, recipe whose fixed error is matched)
    ("kernelshap3d", "kernelshap3d"),
    ("leverage_shap3d", "kernelshap3d"),
    ("lime3d", "lime3d"),
    ("rise3d", "rise3d"),
]


def _fv(recipe: str, model, video, seed: int, overrides: dict, batch_size: int):
    ex = removalx.Explainer.from_recipe(recipe, seed=seed, overrides=overrides, progress=False)
    a = ex.explain(model, video, batch_size=batch_size)
    return a.feature_values.double().numpy(), a.meta


def _adaptive_row(name, model, video, ref, fixed, tol, seg, args) -> float:
    """Run ``adaptive`` at tolerance ``tol`` for every seed, print a row, return its mean RMSE."""
    passes, errs, met = [], [], []
    for seed in range(1, args.seeds + 1):
        overrides = {
            **seg,
            "sample_selection.name": "adaptive",
            "sample_selection.tolerance": tol,
            "sample_selection.max_samples": 4 * args.fixed,
            "sample_selection.round_size": args.round_size,
        }
        fv, meta = _fv(name.rstrip("*"), model, video, seed, overrides, args.batch_size)
        passes.append(meta["adaptive"]["samples_used"])
        met.append(meta["adaptive"]["tolerance_met"])
        errs.append(float(np.sqrt(((fv - ref) ** 2).mean())))
    print(
        f"{name:>16} | {len(ref):>4} {fixed:>10.5f} | {tol:>9.5f} {np.mean(passes):>15.0f} "
        f"{np.mean(passes) / args.fixed:>12.2f} {np.mean(errs):>13.5f} {sum(met):>2}/{len(met)}",
        flush=True,
    )
    return float(np.mean(errs))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="r3d_tiny_ls")
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument(
        "--segments", type=int, default=40, help="SLIC segments of the Kernel SHAP / LIME recipes"
    )
    ap.add_argument("--fixed", type=int, default=1000, help="samples of the fixed recipes")
    ap.add_argument("--reference", type=int, default=8000, help="samples of the reference attribution")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--round-size", type=int, default=50)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--recipes", default=",".join(a for a, _ in PAIRS))
    ap.add_argument(
        "--calibrate", action="store_true", help="second row: tolerance scaled to match the fixed RMSE"
    )
    args = ap.parse_args()
    model = removalx.VideoClassifier(load_zoo_model(args.model)[0])
    video = make_clip(0, seed=0, frames=args.frames, size=args.size).video
    wanted = set(args.recipes.split(","))
    print(
        f"{args.model}, clip {args.frames}x{args.size}x{args.size}, fixed {args.fixed} samples, "
        f"reference {args.reference}, {args.seeds} seeds"
    )
    print(
        f"{'recipe':>16} | {'F':>4} {'fixed RMSE':>10} | {'tolerance':>9} {'adaptive passes':>15} "
        f"{'passes ratio':>12} {'adaptive RMSE':>13} {'met':>5}"
    )
    refs: dict[str, np.ndarray] = {}
    fixed_err: dict[str, float] = {}
    for adaptive_recipe, fixed_recipe in PAIRS:
        if adaptive_recipe not in wanted:
            continue
        seg = {} if fixed_recipe == "rise3d" else {"segmentation.n_segments": args.segments}
        if fixed_recipe not in refs:
            refs[fixed_recipe], _ = _fv(
                fixed_recipe,
                model,
                video,
                0,
                {**seg, "sample_selection.n_samples": args.reference},
                args.batch_size,
            )
            errs = []
            for seed in range(1, args.seeds + 1):
                fv, _ = _fv(
                    fixed_recipe,
                    model,
                    video,
                    seed,
                    {**seg, "sample_selection.n_samples": args.fixed},
                    args.batch_size,
                )
                errs.append(float(np.sqrt(((fv - refs[fixed_recipe]) ** 2).mean())))
            fixed_err[fixed_recipe] = float(np.mean(errs))
        ref, tol = refs[fixed_recipe], fixed_err[fixed_recipe]
        err = _adaptive_row(adaptive_recipe, model, video, ref, tol, tol, seg, args)
        if args.calibrate:
            _adaptive_row(adaptive_recipe + "*", model, video, ref, tol, tol * tol / err, seg, args)
    return 0


if __name__ == "__main__":
    t0 = time.time()
    rc = main()
    print(f"({time.time() - t0:.1f} s)")
    raise SystemExit(rc)
