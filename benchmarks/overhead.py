#!/usr/bin/env python
"""How much does removalx add on top of the model's own forward passes? (docs/benchmarks.md)

Four measurements, printed as tables:

1. **r3d_18 overhead** -- each of the six built-in recipes on torchvision ``r3d_18``
   (random weights) at 16x112x112 with a fixed number of samples: explain time excluding
   segmentation divided by the time of the same number of pure forward passes of random
   clips at the same batch size (``torch.inference_mode``). Target: <= 1.10.
2. **Framework overhead vs Captum** -- a near-free model (the clip mean as 2 logits),
   16x112x112, 200 samples: removalx ``lime3d`` / ``kernelshap3d`` / ``occlusion3d`` against
   Captum ``Lime`` / ``KernelShap`` / ``Occlusion`` with the same feature mask (the SLIC labels
   removalx produced) or the same sliding windows, the same sample count, a black baseline
   and ``perturbations_per_eval`` = the batch size. Target: Captum time / removalx time >= 3.
3. **3D SLIC** -- time of the ``slic3d`` plugin at 16x112x112, 200 segments, and the
   number of segments produced. Target: <= 1 s (the paper reports ~38 s per video).
4. **Peak memory vs number of samples** -- ``lime3d`` with the near-free model at 100
   and 800 samples, each in a fresh subprocess; peak RSS should agree within ~10%.

Run ``python benchmarks/overhead.py --help`` for the options; ``--quick`` is a smoke run.
Timings on a shared machine are noisy: every measurement is repeated (``--repeat``) and
the minimum (and median) is reported.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

import torch

import removalx

R3D_MEAN = (0.43216, 0.394666, 0.37645)
R3D_STD = (0.22803, 0.22145, 0.216989)
RECIPES = ("lime3d", "kernelshap3d", "rise3d", "loco_lv", "univariate_lv", "occlusion3d")


# -- inputs ------------------------------------------------------------------------------
def make_video(frames: int, size: int) -> tuple[torch.Tensor, str]:
    """The synthetic zoo clip if available, else a random smooth clip in [0, 1]."""
    try:
        from removalx.zoo.data import make_clip

        return make_clip(
            0, seed=0, frames=frames, size=size
        ).video.float().contiguous(), "zoo make_clip(0, seed=0)"
    except Exception:  # pragma: no cover - fallback when the zoo is unavailable
        g = torch.Generator().manual_seed(0)
        low = torch.rand(1, 3, max(frames // 4, 1), max(size // 8, 1), max(size // 8, 1), generator=g)
        up = torch.nn.functional.interpolate(
            low, size=(frames, size, size), mode="trilinear", align_corners=False
        )
        return up[0].permute(1, 2, 3, 0).clamp(0, 1).contiguous(), "random smooth clip"


def near_free(x: torch.Tensor) -> torch.Tensor:
    """A model that costs one read of its input: the clip mean as 2 logits (BTHWC)."""
    m = x.mean(dim=(1, 2, 3, 4))
    return torch.stack([m, -m], dim=1)


def near_free_prob(x: torch.Tensor) -> torch.Tensor:
    """``near_free`` followed by a softmax (Captum's forward; removalx's ``probability``)."""
    return near_free(x).softmax(dim=-1)


def occlusion_grid(
    shape: tuple[int, int, int], n: int
) -> tuple[tuple[int, int, int], tuple[int, int, int], int]:
    """Non-overlapping window = stride along (T, H, W) giving about ``n`` windows."""

    def count(d: int, w: int) -> int:
        return math.ceil((d - w) / w) + 1

    t, h, w = shape
    best: tuple[Any, ...] | None = None
    for wt in range(1, t + 1):
        for wh in range(1, h + 1):
            ww = max(1, round(wh * w / h))
            k = count(t, wt) * count(h, wh) * count(w, ww)
            # closest count, then the most cube-like grid of cells
            key = (abs(k - n), abs(count(t, wt) - count(h, wh)))
            if best is None or key < best[0]:
                best = (key, (wt, wh, ww), k)
    assert best is not None
    win = best[1]
    return win, win, best[2]


# -- timing helpers ---------------------------------------------------------------------
def repeat(fn: Callable[[], Any], n: int) -> tuple[list[float], Any]:
    times, out = [], None
    for _ in range(n):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return times, out


def fmt_s(x: float) -> str:
    return f"{x:.3f}" if x < 100 else f"{x:.1f}"


def print_table(title: str, header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    line = "  ".join("-" * w for w in widths)
    print(f"\n## {title}\n")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    print(line)
    for r in rows:
        print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))))
    sys.stdout.flush()


def explain_time(attr: removalx.Attribution) -> float:
    tm = attr.meta["timings"]
    return float(tm["total"] - tm.get("segmentation", 0.0))


# -- 1. r3d_18 ---------------------------------------------------------------------------
def r3d_overhead(video: torch.Tensor, n: int, bs: int, reps: int) -> list[dict[str, Any]]:
    from torchvision.models.video import r3d_18

    torch.manual_seed(0)
    module = r3d_18(weights=None).eval()
    clf = removalx.VideoClassifier(module, layout="BCTHW", mean=R3D_MEAN, std=R3D_STD, name="r3d_18")
    t, h, w, c = video.shape
    win, stride, _ = occlusion_grid((t, h, w), n)
    overrides: dict[str, dict[str, Any]] = {
        "lime3d": {"sample_selection.n_samples": n},
        "kernelshap3d": {"sample_selection.n_samples": n},
        "rise3d": {"sample_selection.n_samples": n},
        "loco_lv": {"segmentation.n_segments": n},
        "univariate_lv": {"segmentation.n_segments": n},
        "occlusion3d": {"segmentation.window": list(win), "segmentation.stride": list(stride)},
    }
    g = torch.Generator().manual_seed(1)
    rand_batches: dict[int, torch.Tensor] = {}

    def pure_forward(n_clips: int) -> None:
        sizes = [bs] * (n_clips // bs) + ([n_clips % bs] if n_clips % bs else [])
        with torch.inference_mode():
            for b in sizes:
                if b not in rand_batches:
                    rand_batches[b] = torch.randn(b, c, t, h, w, generator=g)
                module(rand_batches[b])

    # warm-up (first conv3d calls allocate and pick algorithms)
    pure_forward(min(bs, 2))
    rows = []
    for name in RECIPES:
        ex = removalx.Explainer.from_recipe(name, seed=0, overrides=overrides[name], progress=False)
        ex_times, base_times, ratios = [], [], []
        attr = None
        for _ in range(reps):
            attr = ex.explain(clf, video, batch_size=bs)
            te = explain_time(attr)
            n_fwd = int(attr.meta["n_forward"])
            t0 = time.perf_counter()
            pure_forward(n_fwd)
            tb = time.perf_counter() - t0
            ex_times.append(te)
            base_times.append(tb)
            ratios.append(te / tb)
        assert attr is not None
        tm = attr.meta["timings"]
        rows.append(
            {
                "recipe": name,
                "n_features": int(attr.meta["n_features"]),
                "n_samples": int(attr.meta["n_samples"]),
                "n_forward": int(attr.meta["n_forward"]),
                "explain_s": min(ex_times),
                "forward_s": min(base_times),
                "ratio_min": min(ex_times) / min(base_times),
                "ratio_median": statistics.median(ratios),
                "segmentation_s": float(tm.get("segmentation", 0.0)),
                "non_model_s": float(tm["total"] - tm.get("segmentation", 0.0) - tm.get("model", 0.0)),
                "note": f"window=stride={win}" if name == "occlusion3d" else "",
            }
        )
        r = rows[-1]
        print(
            f"  {name}: F={r['n_features']} n_forward={r['n_forward']} explain={fmt_s(r['explain_s'])}s "
            f"forward={fmt_s(r['forward_s'])}s ratio={r['ratio_min']:.3f}",
            file=sys.stderr,
            flush=True,
        )
    return rows


# -- 2. near-free model vs Captum -------------------------------------------------------
def captum_comparison(
    video: torch.Tensor, n: int, bs: int, reps: int
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    from captum._utils.models.linear_model import SkLearnRidge
    from captum.attr import KernelShap, Lime, Occlusion

    clf = removalx.VideoClassifier(near_free, layout="BTHWC", name="near_free")
    t, h, w, c = video.shape
    win, stride, n_win = occlusion_grid((t, h, w), n)
    x = video[None].contiguous()
    with torch.inference_mode():
        target = int(near_free(x).argmax(1)[0])

    # the same feature mask for both: the SLIC labels of a removalx run
    lime_ex = removalx.Explainer.from_recipe(
        "lime3d", seed=0, overrides={"sample_selection.n_samples": n}, progress=False
    )
    ks_ex = removalx.Explainer.from_recipe(
        "kernelshap3d", seed=0, overrides={"sample_selection.n_samples": n}, progress=False
    )
    occ_ex = removalx.Explainer.from_recipe(
        "occlusion3d",
        seed=0,
        overrides={"segmentation.window": list(win), "segmentation.stride": list(stride)},
        progress=False,
    )
    probe = lime_ex.explain(clf, video, target, batch_size=bs)
    labels = probe.space.labels
    assert labels is not None
    n_features = int(labels.max()) + 1
    mask = labels.to(torch.long)[None, ..., None]  # [1, T, H, W, 1], broadcast over channels

    def rx(ex: removalx.Explainer) -> Callable[[], float]:
        return lambda: explain_time(ex.explain(clf, video, target, batch_size=bs))

    def captum_time(method: Any, **kwargs: Any) -> Callable[[], float]:
        """Seconds of one ``method.attribute(x, baselines=0, target, ..., perturbations_per_eval=bs)``."""

        def run() -> float:
            t0 = time.perf_counter()
            with torch.no_grad():
                method.attribute(x, baselines=0.0, target=target, perturbations_per_eval=bs, **kwargs)
            return time.perf_counter() - t0

        return run

    captum_lime = captum_time(
        Lime(near_free_prob, interpretable_model=SkLearnRidge(alpha=1.0)), feature_mask=mask, n_samples=n
    )
    captum_kernelshap = captum_time(KernelShap(near_free_prob), feature_mask=mask, n_samples=n)
    captum_occlusion = captum_time(
        Occlusion(near_free_prob), sliding_window_shapes=(*win, c), strides=(*stride, c)
    )

    pairs = [
        ("lime3d vs Lime", rx(lime_ex), captum_lime),
        ("kernelshap3d vs KernelShap", rx(ks_ex), captum_kernelshap),
        (f"occlusion3d vs Occlusion ({n_win} windows)", rx(occ_ex), captum_occlusion),
    ]
    g = torch.Generator().manual_seed(2)
    batch = torch.rand(bs, *video.shape, generator=g)

    def model_only() -> float:
        t0 = time.perf_counter()
        with torch.inference_mode():
            for _ in range(math.ceil(n / bs)):
                near_free_prob(batch)
        return time.perf_counter() - t0

    rows = []
    warnings.filterwarnings("ignore", category=UserWarning, module="captum")
    for label, ours, theirs in pairs:
        ours(), theirs()  # warm-up
        ts_ours, ts_theirs = [], []
        for _ in range(reps):  # interleaved, so that load changes hit both
            ts_ours.append(ours())
            ts_theirs.append(theirs())
        ratios = [b / a for a, b in zip(ts_ours, ts_theirs)]
        rows.append(
            {
                "pair": label,
                "removalx_s": min(ts_ours),
                "captum_s": min(ts_theirs),
                "ratio_min": min(ts_theirs) / min(ts_ours),
                "ratio_median": statistics.median(ratios),
            }
        )
        r = rows[-1]
        print(
            f"  {label}: removalx={r['removalx_s']:.3f}s captum={r['captum_s']:.3f}s ratio={r['ratio_min']:.2f}",
            file=sys.stderr,
            flush=True,
        )
    info = {
        "n_features": n_features,
        "model_only_s": min(repeat(model_only, reps)[0]),
        "target": target,
    }
    return rows, info


# -- 3. SLIC ----------------------------------------------------------------------------
def slic_time(video: torch.Tensor, n_segments: int, reps: int) -> dict[str, Any]:
    seg = removalx.get_registry().make("segmentation", "slic3d", {"n_segments": n_segments})
    seg.segment(video, torch.Generator())  # warm-up (imports, numba-free but caches)
    times, space = repeat(lambda: seg.segment(video, torch.Generator()), reps)
    return {
        "n_segments_requested": n_segments,
        "n_segments_produced": int(space.n_features),
        "min_s": min(times),
        "median_s": statistics.median(times),
    }


# -- 4. memory --------------------------------------------------------------------------
def peak_rss_kib() -> int:
    """Peak resident set size of this process (KiB).

    ``VmHWM`` from ``/proc/self/status`` where available: unlike ``ru_maxrss`` it is not
    inherited from the parent across ``fork``/``exec`` (a child started by a process that
    already peaked at 1 GiB would otherwise report 1 GiB).
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def memory_child(n: int, frames: int, size: int, bs: int) -> int:
    """Run lime3d with ``n`` samples and print the peak RSS (KiB) as JSON."""
    video, _ = make_video(frames, size)
    clf = removalx.VideoClassifier(near_free, layout="BTHWC", name="near_free")
    ex = removalx.Explainer.from_recipe(
        "lime3d", seed=0, overrides={"sample_selection.n_samples": n}, progress=False
    )
    before = peak_rss_kib()
    attr = ex.explain(clf, video, batch_size=bs)
    peak = peak_rss_kib()
    print(
        json.dumps(
            {"n_samples": n, "n_forward": attr.meta["n_forward"], "rss_before_kib": before, "peak_kib": peak}
        )
    )
    return 0


def memory_peaks(
    sample_counts: list[int], frames: int, size: int, bs: int, threads: int
) -> list[dict[str, Any]]:
    rows = []
    for n in sample_counts:
        cmd = [
            sys.executable,
            os.path.abspath(__file__),
            "--memory-child",
            str(n),
            "--frames",
            str(frames),
            "--size",
            str(size),
            "--batch-size",
            str(bs),
            "--threads",
            str(threads),
        ]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return rows


# -- main -------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description="Measure removalx's overhead over the model's forward passes (docs/benchmarks.md).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ap.add_argument("--samples", type=int, default=64, help="samples per recipe in the r3d_18 measurement")
    ap.add_argument("--quick", action="store_true", help="smoke run: 8x56x56 clips and 32 samples everywhere")
    ap.add_argument("--skip-r3d", action="store_true", help="skip the (slow) r3d_18 measurement")
    ap.add_argument(
        "--batch-size", type=int, default=8, help="perturbed clips per forward pass (also Captum's)"
    )
    ap.add_argument(
        "--repeat", type=int, default=3, help="repetitions of every timing (min and median reported)"
    )
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads (0 = torch's default). 1 by default: on a shared 2-core machine, "
        "OpenMP with 2 threads makes small tensor ops 10-20x slower whenever the other core is busy",
    )
    ap.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    ap.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--frames", type=int, default=16, help=argparse.SUPPRESS)
    ap.add_argument("--size", type=int, default=112, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if args.memory_child is not None:
        return memory_child(args.memory_child, args.frames, args.size, args.batch_size)

    frames, size = (8, 56) if args.quick else (16, 112)
    n1 = 32 if args.quick else args.samples
    n2 = 32 if args.quick else 200
    mem_counts = [25, 200] if args.quick else [100, 800]
    bs, reps = args.batch_size, max(1, args.repeat)
    video, source = make_video(frames, size)
    results: dict[str, Any] = {}

    print("# removalx overhead benchmark\n")
    print(f"clip      : {frames}x{size}x{size}x3 ({source})")
    print(
        f"machine   : {platform.machine()}, {os.cpu_count()} CPUs, {platform.processor() or platform.platform()}"
    )
    print(
        f"software  : python {platform.python_version()}, torch {torch.__version__}, threads {torch.get_num_threads()}"
    )
    print(f"settings  : batch size {bs}, repeat {reps} (times are the minimum over repeats)")
    with contextlib.suppress(OSError):
        print(f"load avg  : {' '.join(f'{x:.2f}' for x in os.getloadavg())} (at start)")
    sys.stdout.flush()

    if not args.skip_r3d:
        print(f"\n[1/4] r3d_18, {n1} samples per recipe ...", file=sys.stderr, flush=True)
        rows = r3d_overhead(video, n1, bs, reps)
        results["r3d"] = rows
        print_table(
            "1. r3d_18 (random weights): explain time (excl. segmentation) / pure forward time, target <= 1.10",
            [
                "recipe",
                "F",
                "n_forward",
                "explain s",
                "forward s",
                "ratio (min)",
                "ratio (median)",
                "non-model s",
                "1+non-model/fwd",
                "seg s",
                "ok",
            ],
            [
                [
                    r["recipe"] + (f" [{r['note']}]" if r["note"] else ""),
                    str(r["n_features"]),
                    str(r["n_forward"]),
                    fmt_s(r["explain_s"]),
                    fmt_s(r["forward_s"]),
                    f"{r['ratio_min']:.3f}",
                    f"{r['ratio_median']:.3f}",
                    f"{r['non_model_s']:.3f}",
                    f"{1 + r['non_model_s'] / r['forward_s']:.4f}",
                    fmt_s(r["segmentation_s"]),
                    "yes" if r["ratio_min"] <= 1.10 else "NO",
                ]
                for r in rows
            ],
        )

        print(
            "\nnon-model s = time outside the model stage (perturbation, rendering, selection, summary),\n"
            "a load-insensitive measure of the framework's share; ratio (min) compares noisy wall times."
        )

    print(f"\n[2/4] near-free model vs Captum, {n2} samples ...", file=sys.stderr, flush=True)
    rows2, info = captum_comparison(video, n2, bs, reps)
    results["captum"] = {"rows": rows2, **info}
    print_table(
        f"2. Near-free model, {n2} samples: framework time (excl. segmentation), target Captum/removalx >= 3",
        ["removalx vs Captum", "removalx s", "Captum s", "ratio (min)", "ratio (median)", "ok"],
        [
            [
                r["pair"],
                f"{r['removalx_s']:.3f}",
                f"{r['captum_s']:.3f}",
                f"{r['ratio_min']:.2f}x",
                f"{r['ratio_median']:.2f}x",
                "yes" if r["ratio_min"] >= 3 else "NO",
            ]
            for r in rows2
        ],
    )
    print(
        f"\nSame SLIC feature mask for both ({info['n_features']} features); black baseline; "
        f"perturbations_per_eval = {bs}; Captum Lime with SkLearnRidge(alpha=1).\n"
        f"The near-free model alone costs {info['model_only_s']:.3f} s for {n2} clips (included in both)."
    )

    print("\n[3/4] slic3d ...", file=sys.stderr, flush=True)
    s = slic_time(video, 200, reps)
    results["slic3d"] = s
    print_table(
        "3. slic3d segmentation, target <= 1 s (paper: ~38 s per video)",
        ["clip", "requested", "produced", "min s", "median s", "ok"],
        [
            [
                f"{frames}x{size}x{size}",
                str(s["n_segments_requested"]),
                str(s["n_segments_produced"]),
                f"{s['min_s']:.3f}",
                f"{s['median_s']:.3f}",
                "yes" if s["min_s"] <= 1.0 else "NO",
            ]
        ],
    )

    print(f"\n[4/4] peak memory, lime3d at {mem_counts} samples ...", file=sys.stderr, flush=True)
    mem = memory_peaks(mem_counts, frames, size, bs, args.threads)
    results["memory"] = mem
    lo, hi = mem[0], mem[-1]
    growth = hi["peak_kib"] / lo["peak_kib"] - 1
    inc_lo = lo["peak_kib"] - lo["rss_before_kib"]
    inc_hi = hi["peak_kib"] - hi["rss_before_kib"]
    print_table(
        "4. Peak RSS of lime3d (near-free model), one subprocess per sample count, target within ~10%",
        ["n_samples", "n_forward", "peak RSS MiB", "increase during explain MiB"],
        [
            [
                str(m["n_samples"]),
                str(m["n_forward"]),
                f"{m['peak_kib'] / 1024:.1f}",
                f"{(m['peak_kib'] - m['rss_before_kib']) / 1024:.1f}",
            ]
            for m in mem
        ],
    )
    print(
        f"\nPeak growth from {lo['n_samples']} to {hi['n_samples']} samples: {100 * growth:+.1f}% "
        f"({'ok' if abs(growth) <= 0.10 else 'NO'}; increase during explain {inc_lo / 1024:.1f} -> {inc_hi / 1024:.1f} MiB)"
    )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
