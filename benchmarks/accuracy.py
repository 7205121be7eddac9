"""Forward passes needed for the same accuracy: Kernel SHAP estimates against exact Shapley values.

Speed is compared at equal accuracy, not only at equal sample count. On a clip split
into F grid features (F <= 12, so the exact Shapley values can be enumerated), each
estimator gets the same budget of model evaluations; the error is the RMSE against the
exact values, averaged over seeds. Estimators: removalx ``kernelshap3d`` (Shapley-kernel
sizes, exact enumeration of small sizes, paired sampling, merged duplicates), Captum
``KernelShap`` and shap's ``KernelExplainer``.

Run: ``python benchmarks/accuracy.py [--features 10] [--seeds 5]``.
"""

from __future__ import annotations

import argparse
import itertools
import math
import time
import warnings

import numpy as np
import torch

import removalx
from removalx.testing import ToyClassifier, tiny_video

warnings.filterwarnings("ignore")


def _setup(cells: tuple[int, int, int]):
    video = tiny_video(frames=4, size=16, seed=3)
    module = ToyClassifier(n_classes=3, seed=5)
    model = removalx.VideoClassifier(module)
    labels = (
        removalx.get_registry()
        .make("segmentation", "grid3d", {"cells": list(cells)})
        .segment(video, torch.Generator())
        .labels
    )
    with torch.no_grad():
        target = int(model(video[None]).argmax())

    def f_of_z(z: np.ndarray) -> np.ndarray:
        zt = torch.as_tensor(z, dtype=torch.float32)
        keep = zt[:, labels.reshape(-1)].reshape(zt.shape[0], *labels.shape)
        with torch.no_grad():
            out = []
            for i in range(0, keep.shape[0], 256):
                clips = video[None] * keep[i : i + 256, ..., None]
                out.append(model(clips).softmax(-1)[:, target])
        return torch.cat(out).double().numpy()

    return video, model, labels, target, f_of_z


def exact_shapley(f_of_z, n: int) -> np.ndarray:
    z = np.array(list(itertools.product([0, 1], repeat=n)), dtype=np.float64)
    y = f_of_z(z)
    index = {tuple(r.astype(int)): v for r, v in zip(z, y)}
    phi = np.zeros(n)
    for i in range(n):
        for r in z:
            if r[i] == 0:
                s = int(r.sum())
                w = math.factorial(s) * math.factorial(n - s - 1) / math.factorial(n)
                with_i = r.copy()
                with_i[i] = 1
                phi[i] += w * (index[tuple(with_i.astype(int))] - index[tuple(r.astype(int))])
    return phi


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--features", type=int, default=10, choices=[8, 10, 12], help="grid features F (<= 12)")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--budgets", default="24,48,96,192,384")
    args = ap.parse_args()
    cells = {8: (2, 2, 2), 10: (1, 2, 5), 12: (1, 3, 4)}[args.features]
    video, model, labels, target, f_of_z = _setup(cells)
    n = int(labels.max()) + 1
    exact = exact_shapley(f_of_z, n)
    print(
        f"F = {n} features, exact Shapley values from all {2**n} coalitions; |phi| = {np.abs(exact).mean():.4f}"
    )
    budgets = [int(b) for b in args.budgets.split(",")]

    import shap
    from captum.attr import KernelShap

    def forward_prob(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return model(x).softmax(-1)

    rows = []
    for budget in budgets:
        errs: dict[str, list[float]] = {"removalx": [], "captum": [], "shap": []}
        for seed in range(args.seeds):
            ex = removalx.Explainer.from_recipe(
                "kernelshap3d",
                seed=seed,
                overrides={
                    "segmentation.name": "grid3d",
                    "segmentation.cells": list(cells),
                    "sample_selection.n_samples": budget - 2,
                },  # + f(full), f(empty)
                progress=False,
            )
            a = ex.explain(model, video, target=target)
            errs["removalx"].append(float(np.sqrt(((a.feature_values.double().numpy() - exact) ** 2).mean())))

            torch.manual_seed(seed)
            cap = KernelShap(forward_prob).attribute(
                video[None],
                baselines=0.0,
                target=target,
                feature_mask=labels[None, ..., None].expand(1, *labels.shape, 3),
                n_samples=budget,
                perturbations_per_eval=64,
            )
            cphi = np.array([float(cap[0][..., 0][labels == i][0]) for i in range(n)])
            errs["captum"].append(float(np.sqrt(((cphi - exact) ** 2).mean())))

            np.random.seed(seed)
            kx = shap.KernelExplainer(f_of_z, np.zeros((1, n)))
            sphi = np.asarray(kx.shap_values(np.ones((1, n)), nsamples=budget, silent=True)).reshape(-1)[:n]
            errs["shap"].append(float(np.sqrt(((sphi - exact) ** 2).mean())))
        rows.append((budget, {k: float(np.mean(v)) for k, v in errs.items()}))

    print(f"\n{'evals':>6} | {'removalx RMSE':>13} | {'captum RMSE':>11} | {'shap RMSE':>9}")
    for budget, e in rows:
        print(f"{budget:>6} | {e['removalx']:>13.5f} | {e['captum']:>11.5f} | {e['shap']:>9.5f}")
    # evaluations each library needs to reach removalx's error at the smallest budget
    target_err = rows[0][1]["removalx"]
    for lib in ("captum", "shap"):
        need = next((b for b, e in rows if e[lib] <= target_err), None)
        shown = f"{need}" if need else f"> {budgets[-1]}"
        print(
            f"{lib}: evaluations to reach removalx's error at {budgets[0]} evals ({target_err:.5f}): {shown}"
        )
    return 0


if __name__ == "__main__":
    t0 = time.time()
    rc = main()
    print(f"({time.time() - t0:.1f} s)")
    raise SystemExit(rc)
