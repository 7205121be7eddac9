#!/usr/bin/env python
"""Incremental inference against full forward passes on r3d_18 (docs/benchmarks.md, docs/incremental.md).

Three local-perturbation workloads on torchvision ``r3d_18`` (random weights, as the
explanation cost does not depend on them) at 16x112x112, the synthetic zoo clip:

1. ``occlusion3d`` with 4x28x28 windows (stride 2x14x14, 343 windows): reference = clean clip.
2. ``loco_lv`` with 3D SLIC (~200 supervoxels): reference = clean clip.
3. A deletion curve with 7-px patches and 128 steps (MoRF of a smooth importance map):
   reference = the previous step.

For each, ``--samples`` perturbed clips spread evenly over the plan (a contiguous run of
steps for the curve) are evaluated in batches, each batch twice -- full forward passes and
incremental inference, interleaved in one run so that the machine's load hits both alike.
Printed: wall time of each variant, the measured speed-up (ratio of the sums and median
of per-batch ratios), the theoretical one from multiply-adds (convolutions and linear layers)
and the largest difference between the two variants' target probabilities.

``python benchmarks/incremental.py --help``; ``--quick`` is a smoke run at 8x56x56.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Iterator
from typing import Any

import torch

import removalx
from removalx.core.recipe import load_recipe
from removalx.core.registry import get_registry
from removalx.incremental.session import incremental
from removalx.metrics.perturbation import _pixel_rank, step_counts, substrate
from removalx.metrics.units import patch_labels

R3D_MEAN = (0.43216, 0.394666, 0.37645)
R3D_STD = (0.22803, 0.22145, 0.216989)


def make_model() -> removalx.VideoClassifier:
    import torchvision

    torch.manual_seed(0)
    module = torchvision.models.video.r3d_18(weights=None).eval()
    return removalx.VideoClassifier(module, layout="BCTHW", mean=R3D_MEAN, std=R3D_STD, name="r3d_18")


def make_video(frames: int, size: int) -> torch.Tensor:
    from removalx.zoo.data import make_clip

    return make_clip(0, seed=0, frames=frames, size=size).video.float().contiguous()


def plan_batches(
    recipe: str, overrides: dict[str, Any], video: torch.Tensor, n: int, bs: int
) -> tuple[list[torch.Tensor], torch.Tensor, int]:
    """Perturbed clips of ``n`` plan rows spread over the plan, in batches; the reference; plan size."""
    reg = get_registry()
    r = load_recipe(recipe, overrides=overrides, registry=reg)
    gen = torch.Generator().manual_seed(0)
    space = reg.make("segmentation", r.segmentation.name, r.segmentation).segment(video, gen)  # type: ignore[union-attr]
    fsel = reg.make("feature_selection", r.feature_selection.name, r.feature_selection)  # type: ignore[union-attr]
    fsel.bind(space)
    plan = fsel.plan(space.n_features, None, gen).materialize()
    removal = reg.make("removal", r.removal.name, r.removal)  # type: ignore[union-attr]
    removal.prepare(video, space, 0)
    rows = torch.linspace(0, plan.n_samples - 1, n).round().long()
    batches = []
    for chunk in rows.split(bs):
        keep = space.render(plan.z[chunk], chunk)
        batches.append(removal.apply(video, keep, chunk))
    return batches, video, plan.n_samples


def curve_batches(
    video: torch.Tensor, n: int, bs: int, patch: int, steps: int
) -> tuple[list[torch.Tensor], torch.Tensor, int]:
    """Steps ``0 .. n-1`` of a MoRF deletion curve (black substrate) of a smooth importance map."""
    g = torch.Generator().manual_seed(0)
    t, h, w = video.shape[:3]
    noise = torch.rand(1, 1, t, h // 8, w // 8, generator=g)
    importance = torch.nn.functional.interpolate(noise, size=(t, h, w), mode="trilinear")[0, 0]
    labels = patch_labels(video.shape[:3], patch)
    rank, _cum, n_units = _pixel_rank(importance, labels, "morf", 0)
    k = step_counts(n_units, steps)[:n]
    base = substrate(video, "black")
    rank = rank.view(1, t, h, w)
    batches = []
    for kk in k.split(bs):
        keep = 1.0 - (rank < kk.view(-1, 1, 1, 1)).float()
        batches.append(
            torch.lerp(
                base.expand(len(kk), *video.shape), video.expand(len(kk), *video.shape), keep[..., None]
            )
        )
    return batches, video, steps + 1


def run_case(
    clf: removalx.VideoClassifier,
    name: str,
    batches: list[torch.Tensor],
    reference: torch.Tensor,
    kind: str,
    follow: bool,
    target: int,
) -> dict[str, Any]:
    t_full: list[float] = []
    t_inc: list[float] = []
    diff = 0.0
    t0 = time.perf_counter()
    with incremental(clf, reference, kind, follow=follow) as report:
        t_build = time.perf_counter() - t0
        engine = clf.incremental_engine
        for i, batch in enumerate(batches):
            order = ("full", "inc") if i % 2 == 0 else ("inc", "full")
            out: dict[str, torch.Tensor] = {}
            for variant in order:
                clf.incremental_engine = engine if variant == "inc" else None
                t = time.perf_counter()
                with torch.inference_mode():
                    out[variant] = clf(batch).softmax(-1)[:, target]
                (t_inc if variant == "inc" else t_full).append(time.perf_counter() - t)
            clf.incremental_engine = engine
            diff = max(diff, float((out["inc"] - out["full"]).abs().max()))
    ratios = [f / i for f, i in zip(t_full, t_inc)]
    theory = report.macs_full / max(report.macs_done, 1)
    return {
        "case": name,
        "clips": sum(int(b.shape[0]) for b in batches),
        "full_s": round(sum(t_full), 2),
        "incremental_s": round(sum(t_inc), 2),
        "build_s": round(t_build, 2),
        "speedup_measured": round(sum(t_full) / sum(t_inc), 2),
        "speedup_median_batch": round(statistics.median(ratios), 2),
        "speedup_theoretical": round(theory, 2),
        "macs_saved": round(report.saved_fraction, 4),
        "max_abs_diff": diff,
        "used": report.used,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--samples", type=int, default=16, help="perturbed clips per case (default 16)")
    ap.add_argument("--batch-size", type=int, default=8, help="clips per forward pass (default 8)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1; 0 = torch default)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 8x56x56, 8 clips per case")
    ap.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    frames, size, n = (8, 56, 8) if args.quick else (16, 112, args.samples)
    clf = make_model()
    video = make_video(frames, size)
    with torch.inference_mode():
        target = int(clf(video[None]).argmax())
    bs = args.batch_size
    cases: Iterator[tuple[str, tuple[list[torch.Tensor], torch.Tensor, int], str, bool]] = iter(
        [
            (
                "occlusion3d 4x28x28",
                plan_batches(
                    "occlusion3d",
                    {"segmentation": {"name": "sliding_window", "window": [4, size // 4, size // 4], "stride": [2, size // 8, size // 8]}},
                    video, n, bs,
                ),
                "clean",
                False,
            ),
            ("loco_lv 3D SLIC", plan_batches("loco_lv", {}, video, n, bs), "clean", False),
        ]
    )  # fmt: skip
    rows = []
    for name, (batches, ref, total), kind, follow in cases:
        rows.append(dict(run_case(clf, name, batches, ref, kind, follow, target), plan=total))
        print(json.dumps(rows[-1]), flush=True)
    batches, _, total = curve_batches(video, n, bs, patch=7, steps=128)
    rows.append(
        dict(run_case(clf, "deletion 7px x 128", batches, video, "previous_step", True, target), plan=total)
    )
    print(json.dumps(rows[-1]), flush=True)
    print(f"\nr3d_18 (random weights), {frames}x{size}x{size}, batch {bs}, torch threads {torch.get_num_threads()}, "
          f"{platform.machine()} {platform.python_version()} torch {torch.__version__}")  # fmt: skip
    print("| workload | plan size | clips timed | full s | incremental s | measured speed-up (sum / median batch) "
          "| theoretical (MACs) | MACs saved | max abs diff |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['case']} | {r['plan']} | {r['clips']} | {r['full_s']} | {r['incremental_s']} | "
            f"{r['speedup_measured']}x / {r['speedup_median_batch']}x | {r['speedup_theoretical']}x | "
            f"{100 * r['macs_saved']:.1f} % | {r['max_abs_diff']:.1e} |"
        )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
