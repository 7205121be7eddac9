"""Forward passes needed for the same accuracy: Kernel SHAP estimates against exact Shapley values.

Speed is compared at equal accuracy, not only at equal sample count. On a clip split
into F grid features (F <= 12, so the exact Shapley values can be enumerated), each
estimator gets the same budget of model evaluations; the error is the RMSE against the
exact values, averaged over seeds. Estimators: removalx ``kernelshap3d`` (Shapley-kernel
sizes, exact enumeration of small sizes, paired sampling, merged duplicates), Captum
``KernelShap`` and shap's ``KernelExplainer``.

Run: ``python benchmarks/accuracy.py [--features 10] [--seeds 5]``.

``--grid`` measures Kernel SHAP at real feature counts instead: F = 32, 64, 128, 256 grid
features of an 8x32x32 clip, budgets 5F, 10F, 20F model evaluations, games with known
Shapley values (:class:`removalx.testing.games.UnanimityGameModel`: F unanimity games over
random sets of 1-4 features, weights N(0, 1), played by a model that reads the segments'
means, so segmentation, rendering and removal are exercised). Estimators: removalx
``kernelshap3d`` (Lundberg & Lee's sampling) and ``leverage_shap3d`` (Leverage SHAP), Captum
``KernelShap`` and shap ``KernelExplainer(l1_reg=False)``; errors are RMSEs averaged over
``--games`` random games (game ``g`` also seeds every estimator), and the table prints each
removalx estimator's error divided by shap's and by Captum's.
Run: ``python benchmarks/accuracy.py --grid [--games 5] [--sizes 32,64,128,256]``.
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


GRID_CELLS = {32: (2, 4, 4), 64: (4, 4, 4), 128: (2, 8, 8), 256: (4, 8, 8)}


def _game(n_features: int, game: int):
    from removalx.testing.games import UnanimityGameModel, random_unanimity_game

    g = torch.Generator().manual_seed(1000 + game)
    video = 0.3 + 0.7 * torch.rand(8, 32, 32, 3, generator=g)
    labels = (
        removalx.get_registry()
        .make("segmentation", "grid3d", {"cells": list(GRID_CELLS[n_features])})
        .segment(video, torch.Generator())
        .labels
    )
    sets, weights = random_unanimity_game(n_features, n_features, g)
    return video, labels, UnanimityGameModel(labels, video, sets, weights)


def _grid_errors(n_features: int, budget: int, game: int) -> dict[str, float]:
    import shap
    from captum.attr import KernelShap

    video, labels, module = _game(n_features, game)
    exact = module.shapley_values().numpy()
    model = removalx.VideoClassifier(module, layout="BTHWC")

    def rmse(phi: np.ndarray) -> float:
        return float(np.sqrt(((phi - exact) ** 2).mean()))

    errs = {}
    for recipe in ("kernelshap3d", "leverage_shap3d"):
        ex = removalx.Explainer.from_recipe(
            recipe,
            seed=game,
            overrides={
                "segmentation.name": "grid3d",
                "segmentation.cells": list(GRID_CELLS[n_features]),
                "sample_selection.n_samples": budget - 2,  # + f(full) (the clean pass) + f(empty)
                "behavior.name": "logit",
            },
            progress=False,
        )
        a = ex.explain(model, video, target=0, batch_size=256)
        assert a.meta["n_forward"] == budget, a.meta["n_forward"]
        errs[recipe] = rmse(a.feature_values.double().numpy())

    def logits(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return module(x)

    torch.manual_seed(game)
    cap = KernelShap(logits).attribute(
        video[None],
        baselines=0.0,
        target=0,
        feature_mask=labels[None, ..., None].expand(1, *labels.shape, 3),
        n_samples=budget,
        perturbations_per_eval=256,
    )
    errs["captum"] = rmse(np.array([float(cap[0][..., 0][labels == i][0]) for i in range(n_features)]))

    def f_of_z(z: np.ndarray) -> np.ndarray:
        zt = torch.as_tensor(z, dtype=torch.float32)
        out = []
        for i in range(0, zt.shape[0], 256):
            keep = zt[i : i + 256][:, labels.reshape(-1)].reshape(-1, *labels.shape)
            out.append(logits(video[None] * keep[..., None])[:, 0])
        return torch.cat(out).double().numpy()

    np.random.seed(game)
    kx = shap.KernelExplainer(f_of_z, np.zeros((1, n_features)))
    sv = kx.shap_values(np.ones((1, n_features)), nsamples=budget, silent=True, l1_reg=False)
    errs["shap"] = rmse(np.asarray(sv).reshape(-1)[:n_features])
    return errs


def grid(sizes: list[int], games: int) -> int:
    print(f"Kernel SHAP at F = {sizes}, budgets 5F/10F/20F, {games} unanimity games per cell (RMSE)")
    head = (
        f"{'F':>4} {'evals':>6} | {'kernelshap3d':>12} {'leverage':>9} {'captum':>8} {'shap':>8} | "
        f"{'ks/shap':>7} {'lev/shap':>8} {'lev/captum':>10} {'ks/captum':>9}"
    )
    print(head)
    for f in sizes:
        for mult in (5, 10, 20):
            budget = mult * f
            runs = [_grid_errors(f, budget, g) for g in range(games)]
            e = {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}
            ks, lev = e["kernelshap3d"], e["leverage_shap3d"]
            print(
                f"{f:>4} {budget:>6} | {ks:>12.4f} {lev:>9.4f} {e['captum']:>8.4f} {e['shap']:>8.4f} | "
                f"{ks / e['shap']:>7.3f} {lev / e['shap']:>8.3f} {lev / e['captum']:>10.3f} "
                f"{ks / e['captum']:>9.3f}",
                flush=True,
            )
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grid", action="store_true", help="Kernel SHAP at F = 32..256 on unanimity games")
    ap.add_argument("--games", type=int, default=5, help="random games per grid cell (--grid)")
    ap.add_argument("--sizes", default="32,64,128,256", help="feature counts of the grid (--grid)")
    ap.add_argument("--features", type=int, default=10, choices=[8, 10, 12], help="grid features F (<= 12)")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--budgets", default="24,48,96,192,384")
    args = ap.parse_args()
    if args.grid:
        return grid([int(x) for x in args.sizes.split(",")], args.games)
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
