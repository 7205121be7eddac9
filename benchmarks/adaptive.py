"""Forward passes of ``adaptive`` sample selection at the error of the fixed 1000-sample recipes.

For each recipe (``kernelshap3d``, ``lime3d``, ``rise3d``; and ``leverage_shap3d`` sampled
adaptively against ``kernelshap3d``'s fixed error) and each of ``--clips`` zoo synthetic clips
(``removalx.zoo.data.make_clip``; labels cycle through the classes, one rendering seed per
cycle) explained with a zoo model:

* a reference attribution from ``--reference`` samples (seed 0) stands for the exact values;
* the fixed recipe with ``--fixed`` samples (seed 1) gives the error to match (RMSE of the
  feature values against the reference);
* ``adaptive`` (seed 1) runs once per clip to ``--trace`` samples while the feature values and
  standard errors (SE) it checks after every round are recorded. A stream's rows depend on
  the row index only, so the run stopped by any tolerance is a prefix of that trace: the
  samples used and the error reached at every tolerance follow without running again (one
  clip is rerun for real at the end to check this).

Three tolerances per recipe (criterion ``all``: the largest SE of any feature):

* ``tol = fixed RMSE``: the mean fixed RMSE over the clips, taken literally as the tolerance;
* ``mean error``: the loosest tolerance at which (and at every tighter one) ``adaptive``'s mean
  RMSE over the clips is at most the fixed recipe's mean RMSE;
* ``every clip``: the same with the largest RMSE over the clips: the guarantee that a fixed
  budget gives on this set of clips.

Passes ratio = mean samples used by ``adaptive`` / ``--fixed`` (the base cases, f(full) and
f(empty), are the same for both).

Run: ``python benchmarks/adaptive.py [--model r3d_tiny_ls] [--clips 8] [--segments 40]``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

import removalx
from removalx.zoo.data import CLASS_NAMES, make_clip
from removalx.zoo.models import load_zoo_model
from removalx_plugins.selection.adaptive import Adaptive

PAIRS = [  # (recipe sampled adaptively, recipe whose fixed error is matched)
    ("kernelshap3d", "kernelshap3d"),
    ("leverage_shap3d", "kernelshap3d"),
    ("lime3d", "lime3d"),
    ("rise3d", "rise3d"),
]


@dataclass
class Trace:
    """Samples used, RMSE against the reference and largest SE after every checked round."""

    n: list[int] = field(default_factory=list)
    err: list[float] = field(default_factory=list)
    max_se: list[float] = field(default_factory=list)

    def stop(self, tol: float) -> tuple[int, float, bool]:
        """Samples used, RMSE reached and tolerance met for a run at ``tol``."""
        for n, e, s in zip(self.n, self.err, self.max_se):
            if s <= tol:
                return n, e, True
        return self.n[-1], self.err[-1], False


def _explain(recipe: str, model, video, seed: int, overrides: dict, batch_size: int):
    ex = removalx.Explainer.from_recipe(recipe, seed=seed, overrides=overrides, progress=False)
    a = ex.explain(model, video, batch_size=batch_size)
    return a.feature_values.double().numpy(), a.meta


def _trace(recipe: str, model, video, ref: np.ndarray, seg: dict, args) -> Trace:
    """Run ``adaptive`` to ``--trace`` samples, recording every check (see the docstring)."""
    trace = Trace()
    original: Callable = Adaptive.converged
    round_size, min_rounds = args.round_size, 2

    def record(self, values: torch.Tensor, se: torch.Tensor) -> bool:
        k = len(trace.n)
        trace.n.append(min((min_rounds + k) * round_size, args.trace))
        trace.err.append(float(np.sqrt(((values.double().cpu().numpy() - ref) ** 2).mean())))
        trace.max_se.append(float(torch.nan_to_num(se.double(), nan=float("inf")).max()))
        return False

    Adaptive.converged = record  # type: ignore[method-assign]
    try:
        _explain(recipe, model, video, 1, _adaptive_overrides(seg, 1.0, args.trace, args), args.batch_size)
    finally:
        Adaptive.converged = original  # type: ignore[method-assign]
    return trace


def _adaptive_overrides(seg: dict, tol: float, max_samples: int, args) -> dict:
    return {
        **seg,
        "sample_selection.name": "adaptive",
        "sample_selection.tolerance": tol,
        "sample_selection.max_samples": max_samples,
        "sample_selection.round_size": args.round_size,
        "sample_selection.min_rounds": 2,
    }


def _loosest(traces: list[Trace], ok: Callable[[list[float]], bool]) -> float:
    """The loosest tolerance (among the recorded SEs) such that it and every tighter one
    satisfy ``ok`` on the per-clip errors (a lucky error at one loose tolerance does not count)."""
    candidates = sorted({s for t in traces for s in t.max_se if np.isfinite(s)})
    chosen = candidates[0] if candidates else float("inf")
    for tol in candidates:
        if not ok([t.stop(tol)[1] for t in traces]):
            break
        chosen = tol
    return chosen


def _row(name: str, reading: str, tol: float, traces: list[Trace], fixed: list[float], args) -> None:
    stops = [t.stop(tol) for t in traces]
    passes = np.mean([s[0] for s in stops])
    errs = [s[1] for s in stops]
    print(
        f"| {name} | {reading} | {np.mean(fixed):.5f} / {np.max(fixed):.5f} | {tol:.5f} | "
        f"{passes:.0f} | {passes / args.fixed:.2f} | {np.mean(errs):.5f} / {np.max(errs):.5f} | "
        f"{sum(s[2] for s in stops)}/{len(stops)} | {min(s[0] for s in stops)}-{max(s[0] for s in stops)} |",
        flush=True,
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="r3d_tiny_ls")
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--clips", type=int, default=8, help="zoo clips (labels cycle through the classes)")
    ap.add_argument(
        "--segments", type=int, default=40, help="SLIC segments of the Kernel SHAP / LIME recipes"
    )
    ap.add_argument("--fixed", type=int, default=1000, help="samples of the fixed recipes")
    ap.add_argument("--reference", type=int, default=16000, help="samples of the reference attribution")
    ap.add_argument("--trace", type=int, default=2000, help="samples of each recorded adaptive run")
    ap.add_argument("--round-size", type=int, default=50)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--recipes", default=",".join(a for a, _ in PAIRS))
    args = ap.parse_args()
    model = removalx.VideoClassifier(load_zoo_model(args.model)[0])
    n_cls = len(CLASS_NAMES)
    clips = [
        make_clip(c % n_cls, seed=c // n_cls, frames=args.frames, size=args.size).video
        for c in range(args.clips)
    ]
    wanted = args.recipes.split(",")
    print(
        f"{args.model}, {args.clips} clips {args.frames}x{args.size}x{args.size}, fixed {args.fixed} "
        f"samples, reference {args.reference}, traces of {args.trace}, rounds of {args.round_size}\n"
    )
    print(
        "| recipe (adaptive) | tolerance chosen by | fixed RMSE mean / max | tolerance | "
        "adaptive passes (mean) | passes ratio | adaptive RMSE mean / max | met | passes min-max |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    refs: dict[str, list[np.ndarray]] = {}
    fixed_err: dict[str, list[float]] = {}
    for adaptive_recipe, fixed_recipe in PAIRS:
        if adaptive_recipe not in wanted:
            continue
        seg = {} if fixed_recipe == "rise3d" else {"segmentation.n_segments": args.segments}
        if fixed_recipe not in refs:
            refs[fixed_recipe], fixed_err[fixed_recipe] = [], []
            for video in clips:
                ref, _ = _explain(
                    fixed_recipe,
                    model,
                    video,
                    0,
                    {**seg, "sample_selection.n_samples": args.reference},
                    args.batch_size,
                )
                fv, _ = _explain(
                    fixed_recipe,
                    model,
                    video,
                    1,
                    {**seg, "sample_selection.n_samples": args.fixed},
                    args.batch_size,
                )
                refs[fixed_recipe].append(ref)
                fixed_err[fixed_recipe].append(float(np.sqrt(((fv - ref) ** 2).mean())))
        fixed = fixed_err[fixed_recipe]
        traces = [_trace(adaptive_recipe, model, v, r, seg, args) for v, r in zip(clips, refs[fixed_recipe])]
        mean_fixed, max_fixed = float(np.mean(fixed)), float(np.max(fixed))
        mean_tol = _loosest(traces, lambda e: np.mean(e) <= mean_fixed)  # noqa: B023 (used at once)
        every_tol = _loosest(traces, lambda e: np.max(e) <= max_fixed)  # noqa: B023 (used at once)
        _row(adaptive_recipe, "tol = fixed RMSE", float(np.mean(fixed)), traces, fixed, args)
        _row(adaptive_recipe, "mean error", mean_tol, traces, fixed, args)
        _row(adaptive_recipe, "every clip", every_tol, traces, fixed, args)
        # the trace stands for real runs: rerun the first clip at the mean-error tolerance
        fv, meta = _explain(
            adaptive_recipe,
            model,
            clips[0],
            1,
            _adaptive_overrides(seg, mean_tol, args.trace, args),
            args.batch_size,
        )
        used, err, _ = traces[0].stop(mean_tol)
        real_err = float(np.sqrt(((fv - refs[fixed_recipe][0]) ** 2).mean()))
        if meta["adaptive"]["samples_used"] != used or not np.isclose(real_err, err, rtol=1e-3, atol=1e-9):
            raise SystemExit(
                f"{adaptive_recipe}: the rerun used {meta['adaptive']['samples_used']} samples "
                f"(RMSE {real_err:.6f}); the trace says {used} ({err:.6f})"
            )
    return 0


if __name__ == "__main__":
    t0 = time.time()
    rc = main()
    print(f"({time.time() - t0:.1f} s)")
    raise SystemExit(rc)
