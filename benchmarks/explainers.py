#!/usr/bin/env python
"""What do the explainer plugins cost on top of the model's own forward + backward passes?

Three ratios, printed as a table (lower is better, 1.0 = no overhead):

1. **STEP per iteration** -- the marginal time of one STEP iteration (paper defaults: 4 areas
   as one batch, stride-7 smooth-max seeds, blur pyramid, L_K with the 8x11x11 ellipsoid),
   measured as ``(t(N2 iterations) - t(N1 iterations)) / (N2 - N1)``, divided by the time of
   one forward + backward pass of a batch of the same size (4 clips, gradient w.r.t. the
   input). Target <= 1.2. Run on a small 3D CNN (``ToyClassifier``) and, unless
   ``--skip-r3d``, torchvision ``r3d_18`` with random weights at 8x112x112.
2. **IG / SmoothGrad** -- explain time divided by ``(#backward clips / batch) x`` the time of
   one forward + backward pass at the same internal batch size.

"forward + backward" is always the gradient w.r.t. the input only (no parameter gradients),
which is what every explainer computes.

Timings on a shared machine are noisy: each is the minimum over ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import importlib
import time
from collections.abc import Callable

import torch

from removalx.core.classifier import VideoClassifier
from removalx.testing.data import ToyClassifier, tiny_video


def best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def fwd_bwd(clf: VideoClassifier, shape: tuple[int, ...], batch: int, repeat: int) -> float:
    x = torch.rand(batch, *shape)

    def run() -> None:
        xi = x.clone().requires_grad_(True)
        torch.autograd.grad(torch.softmax(clf(xi), 1)[:, 0].sum(), xi)  # input gradient only

    run()  # warm-up
    return best(run, repeat)


def explainer(module: str, cls: str, cfg: str, **kw: object):  # type: ignore[no-untyped-def]
    m = importlib.import_module(f"removalx_plugins.explainers.{module}")
    return getattr(m, cls)(getattr(m, cfg)(**kw))


def bench_step(name: str, clf: VideoClassifier, video: torch.Tensor, n1: int, n2: int, repeat: int) -> dict:
    gen = torch.Generator().manual_seed(0)
    areas = (0.05, 0.10, 0.15, 0.20)

    def run(n: int) -> float:
        ex = explainer("step", "STEP", "STEPConfig", iterations=n, areas=areas)
        return best(lambda: ex.explain(clf, video, 0, gen), repeat)

    t1, t2 = run(n1), run(n2)
    per_iter = (t2 - t1) / (n2 - n1)
    fb = fwd_bwd(clf, tuple(video.shape), len(areas), repeat)
    return {
        "what": f"STEP iteration / fwd+bwd[{len(areas)}] ({name})",
        "time": per_iter,
        "reference": fb,
        "ratio": per_iter / fb,
        "setup_s": t1 - n1 * per_iter,
    }


def bench_grad(
    name: str, clf: VideoClassifier, video: torch.Tensor, batch: int, n: int, repeat: int
) -> list[dict]:
    gen = torch.Generator().manual_seed(0)
    fb = fwd_bwd(clf, tuple(video.shape), batch, repeat)
    out = []
    for module, cls, cfg, kw in (
        ("integrated_gradients", "IntegratedGradients", "IGConfig", {"steps": n}),
        ("smoothgrad", "SmoothGrad", "SmoothGradConfig", {"n_samples": n}),
    ):
        ex = explainer(module, cls, cfg, internal_batch_size=batch, **kw)
        t = best(lambda ex=ex: ex.explain(clf, video, 0, gen), repeat)
        ref = fb * n / batch
        out.append(
            {
                "what": f"{module} m={n} / {n // batch} x fwd+bwd[{batch}] ({name})",
                "time": t,
                "reference": ref,
                "ratio": t / ref,
                "setup_s": float("nan"),
            }
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (0 = default)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-r3d", action="store_true", help="skip torchvision r3d_18 (the slow part)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    rows: list[dict] = []
    small = VideoClassifier(ToyClassifier(n_classes=10))
    clip = tiny_video(frames=8, size=56)
    rows.append(bench_step("ToyClassifier 8x56x56", small, clip, 5, 25, args.repeat))
    rows += bench_grad("ToyClassifier 8x56x56", small, clip, 16, 32, args.repeat)
    if not args.skip_r3d:
        from torchvision.models.video import r3d_18

        torch.manual_seed(0)
        r3d = VideoClassifier(r3d_18(weights=None), mean=(0.43, 0.39, 0.38), std=(0.23, 0.22, 0.22))
        big = tiny_video(frames=8, size=112)
        rows.append(bench_step("r3d_18 8x112x112", r3d, big, 1, 3, 1))
        rows += bench_grad("r3d_18 8x112x112", r3d, big, 4, 8, 1)

    print(f"{'measurement':62s} {'time s':>9s} {'ref s':>9s} {'ratio':>7s} {'setup s':>8s}")
    for r in rows:
        print(f"{r['what']:62s} {r['time']:9.4f} {r['reference']:9.4f} {r['ratio']:7.2f} {r['setup_s']:8.3f}")


if __name__ == "__main__":
    main()
