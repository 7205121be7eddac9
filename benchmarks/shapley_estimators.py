"""Candidate Shapley estimators against Leverage SHAP and shap on games with known values.

Exploration behind docs/benchmarks.md ("Kernel SHAP at 32-256 features"): can an estimator
reach half of shap ``KernelExplainer(l1_reg=False)``'s error at the same number of
evaluations on the grid's games? The games are those of ``benchmarks/accuracy.py --grid``
(:func:`removalx.testing.games.random_unanimity_game`: F unanimity games over random sets of
1-4 features, N(0, 1) weights, same seeds), played directly on coalitions (no video: the
pipeline is exercised by ``accuracy.py``; here only the estimators differ). Every estimator
gets ``budget`` evaluations including f(empty) and f(full). Estimators:

* ``leverage``: removalx ``leverage_shapley`` plan + Kernel SHAP's constrained weighted least
  squares (what ``leverage_shap3d`` computes).
* ``ra_msr``: regression-adjusted Monte Carlo (Witter, Liu & Musco, "Regression-adjusted Monte
  Carlo Estimators for Shapley Values and Probabilistic Values", 2025): a gradient-boosted
  tree model ``g`` is fitted to the sampled values, its Shapley values are computed exactly
  (every leaf of a tree on binary features is a game ``[A in S, B disjoint from S]`` with
  closed-form values), and the residual ``v - g`` is estimated by maximum sample reuse with
  Horvitz-Thompson weights on the same Leverage SHAP samples (the authors' released code fits
  and estimates on the same samples).
* ``ra_reg``: the same control variate, the residual estimated by Leverage SHAP's regression.
* ``enum_1``: Leverage SHAP with sizes 1 and F-1 enumerated first (2F evaluations), the rest
  of the budget spread evenly over the other sizes.
* ``perm``: permutation sampling with antithetic (reversed) permutations.
* ``cubic``: Kernel SHAP's regression on the odd part of the paired samples with order-3
  Fourier terms added (the Shapley value of a fitted order-3 Fourier model is exact; paired
  sampling makes even orders irrelevant), ridge-penalised; the candidate triples are the
  triangles of the ``2F`` strongest pairwise interactions of the even part
  ``(v(S) + v(complement S)) / 2``; ``cubic_random`` takes as many random triples instead, and
  ``cubic_true`` the game's own order-3 interactions (an oracle: the limit of the approach).

Run: ``python benchmarks/shapley_estimators.py [--sizes 32,64,128,256] [--games 3]``
(needs ``shap`` and ``scikit-learn``, both in ``removalx[dev]``).
"""

from __future__ import annotations

import argparse
import itertools
import math
import time
import warnings
from collections.abc import Callable

import numpy as np
import torch

from removalx.core.coalitions import subsets_of_size
from removalx.testing.games import random_unanimity_game
from removalx_plugins.selection.leverage_shapley import (
    LeverageShapley,
    LeverageShapleyConfig,
    _distinct_subsets,
)

warnings.filterwarnings("ignore")
Game = Callable[[np.ndarray], np.ndarray]


def make_game(n: int, game: int) -> tuple[Game, np.ndarray]:
    """The game ``game`` of ``accuracy.py --grid`` at ``n`` features and its Shapley values."""
    g = torch.Generator().manual_seed(1000 + game)
    torch.rand(8, 32, 32, 3, generator=g)  # the clip drawn first in accuracy.py
    sets, w = random_unanimity_game(n, n, g)
    member = np.zeros((len(sets), n))
    for t, s in enumerate(sets):
        member[t, list(s)] = 1.0
    weights = w.numpy()

    def v(z: np.ndarray) -> np.ndarray:
        return (((1.0 - np.asarray(z, float)) @ member.T) == 0).astype(float) @ weights

    v.sets = sets  # type: ignore[attr-defined]
    return v, (member / member.sum(1, keepdims=True)).T @ weights


def wls(z: np.ndarray, y: np.ndarray, w: np.ndarray, v0: float, v1: float) -> np.ndarray:
    """Kernel SHAP's constrained weighted least squares (efficiency by substitution)."""
    last = z[:, -1:]
    x = z[:, :-1] - last
    t = y - v0 - last[:, 0] * (v1 - v0)
    head = np.linalg.lstsq((x * w[:, None]).T @ x, (x * w[:, None]).T @ t, rcond=None)[0]
    return np.concatenate([head, [v1 - v0 - head.sum()]])


def _ends(v: Game, n: int) -> tuple[float, float]:
    return float(v(np.zeros((1, n)))[0]), float(v(np.ones((1, n)))[0])


def _leverage_plan(n: int, budget: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    plan = LeverageShapley(LeverageShapleyConfig()).plan(n, budget - 2, torch.Generator().manual_seed(seed))
    return plan.z.double().numpy(), plan.weights.double().numpy()


def leverage(v: Game, n: int, budget: int, seed: int) -> np.ndarray:
    z, w = _leverage_plan(n, budget, seed)
    return wls(z, v(z), w, *_ends(v, n))


def _leaf_values(tree, scale: float, phi: np.ndarray, node: int = 0, a=frozenset(), b=frozenset()) -> None:
    """Add the Shapley values of a regression tree on binary features to ``phi``: each leaf is
    the game ``value * [a subset of S, b disjoint from S]``, whose members of ``a`` get
    ``value (|a|-1)! |b|! / (|a|+|b|)!`` each and members of ``b`` minus ``value |a|! (|b|-1)! / (|a|+|b|)!``."""
    t = tree.tree_
    if t.children_left[node] == -1:
        val, na, nb = scale * float(t.value[node].reshape(-1)[0]), len(a), len(b)
        if na + nb:
            for i in a:
                phi[i] += val * math.factorial(na - 1) * math.factorial(nb) / math.factorial(na + nb)
            for j in b:
                phi[j] -= val * math.factorial(na) * math.factorial(nb - 1) / math.factorial(na + nb)
        return
    f = int(t.feature[node])
    if f in a or f in b:  # a second split on a binary feature: one side is empty
        _leaf_values(tree, scale, phi, t.children_right[node] if f in a else t.children_left[node], a, b)
        return
    _leaf_values(tree, scale, phi, t.children_left[node], a, b | {f})
    _leaf_values(tree, scale, phi, t.children_right[node], a | {f}, b)


def _tree_model(z: np.ndarray, y: np.ndarray, n: int, seed: int):
    """Gradient-boosted trees (depth 3, 300 trees) and their exact Shapley values."""
    from sklearn.ensemble import GradientBoostingRegressor

    model = GradientBoostingRegressor(n_estimators=300, max_depth=3, random_state=seed).fit(z, y)
    phi = np.zeros(n)
    for est in model.estimators_[:, 0]:
        _leaf_values(est, model.learning_rate, phi)
    return phi, model.predict


def _regression_adjusted(v: Game, n: int, budget: int, seed: int, residual: str) -> np.ndarray:
    z, w = _leverage_plan(n, budget, seed)
    y = v(z)
    v0, v1 = _ends(v, n)
    ends = np.stack([np.zeros(n), np.ones(n)])
    phi_g, predict = _tree_model(np.vstack([z, ends]), np.concatenate([y, [v0, v1]]), n, seed)
    r = y - predict(z)
    r0, r1 = np.array([v0, v1]) - predict(ends)
    if residual == "reg":
        return phi_g + wls(z, r, w, r0, r1)
    # maximum sample reuse, Horvitz-Thompson: k_s of the C(n, s) coalitions of size s drawn
    s = z.sum(1).astype(int)
    c = r / np.bincount(s, minlength=n + 1)[s]
    return phi_g + z.T @ (c / s) - (1 - z).T @ (c / (n - s)) + (r1 - r0) / n


def ra_msr(v: Game, n: int, budget: int, seed: int) -> np.ndarray:
    return _regression_adjusted(v, n, budget, seed, "msr")


def ra_reg(v: Game, n: int, budget: int, seed: int) -> np.ndarray:
    return _regression_adjusted(v, n, budget, seed, "reg")


def enum_1(v: Game, n: int, budget: int, seed: int) -> np.ndarray:
    g = torch.Generator().manual_seed(seed)
    one = subsets_of_size(n, 1)
    rows = [torch.stack([one, 1 - one], 1).reshape(-1, n)]
    weights = [torch.full((2 * n,), 1.0 / n, dtype=torch.float64)]
    sizes = list(range(2, n // 2 + 1))
    per = (budget - 2 - 2 * n) / sum(2 if 2 * s != n else 1 for s in sizes)
    for s in sizes:
        k = int(per) if 2 * s != n else int(per) // 2 * 2
        if k < 1:
            continue
        zs = _distinct_subsets(n, s, k if 2 * s != n else k // 2, g, True)
        rows.append(torch.stack([zs, 1 - zs], 1).reshape(-1, n))
        weights.append(torch.full((rows[-1].shape[0],), (n - 1) / (s * (n - s) * k), dtype=torch.float64))
    z = torch.cat(rows).double().numpy()
    return wls(z, v(z), torch.cat(weights).numpy(), *_ends(v, n))


def perm(v: Game, n: int, budget: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v0, v1 = _ends(v, n)
    pairs = max(1, (budget - 2) // (2 * (n - 1)))
    phi = np.zeros(n)
    tri = np.tril(np.ones((n - 1, n)))  # row j: the first j + 1 players of the order
    for _ in range(pairs):
        p = rng.permutation(n)
        for order in (p, p[::-1]):
            z = np.zeros((n - 1, n))
            z[:, order] = tri
            phi[order] += np.diff(np.concatenate([[v0], v(z), [v1]]))
    return phi / (2 * pairs)


def cubic(v: Game, n: int, budget: int, seed: int, ridge: float = 1e-2, pick: str = "pairs") -> np.ndarray:
    z, w = _leverage_plan(n, budget, seed)
    y = v(z)
    v0, v1 = _ends(v, n)
    chi = 1 - 2 * z[0::2]  # rows 2k + 1 are the complements of rows 2k
    odd, even, wo = (y[0::2] - y[1::2]) / 2, (y[0::2] + y[1::2]) / 2, w[0::2] + w[1::2]
    size = np.minimum(z[0::2].sum(1), n - z[0::2].sum(1)).astype(int)
    even = even - (np.bincount(size, even, n + 1) / np.maximum(np.bincount(size, minlength=n + 1), 1))[size]
    strength = np.abs((chi * even[:, None]).T @ chi)
    np.fill_diagonal(strength, 0)
    iu = np.triu_indices(n, 1)
    top = np.argsort(-strength[iu])[: 2 * n]
    edge = np.zeros((n, n), bool)
    edge[iu[0][top], iu[1][top]] = True
    edge |= edge.T
    score = {}
    for a, b in zip(iu[0][top], iu[1][top]):
        for c in np.nonzero(edge[a] & edge[b])[0]:
            t = tuple(sorted((int(a), int(b), int(c))))
            score[t] = strength[t[0], t[1]] + strength[t[0], t[2]] + strength[t[1], t[2]]
    chosen = sorted(score, key=lambda t: -score[t])[:n]
    if pick == "random":  # as many random triples: is the gain the interactions or the ridge?
        rng = np.random.default_rng(seed)
        chosen = list({tuple(sorted(rng.choice(n, 3, replace=False).tolist())) for _ in range(len(chosen))})
    elif pick == "true":  # the game's own order-3 interactions (an oracle, not an estimator)
        chosen = sorted({t for s in v.sets if len(s) >= 3 for t in itertools.combinations(s, 3)})  # type: ignore[attr-defined]
    triples = np.array(chosen, dtype=int).reshape(-1, 3)
    x = np.hstack([chi, chi[:, triples[:, 0]] * chi[:, triples[:, 1]] * chi[:, triples[:, 2]]])
    # efficiency: at S = empty every chi is 1 and the odd part is (v0 - v1) / 2
    x = np.vstack([x, np.ones(x.shape[1])])
    t = np.concatenate([odd, [(v0 - v1) / 2]])
    wt = np.concatenate([wo, [1e6 * wo.max()]]) / wo.sum()
    pen = np.r_[np.zeros(n), np.full(len(triples), ridge)]
    f = np.linalg.solve(
        (x * wt[:, None]).T @ x + np.diag(pen) + 1e-12 * np.eye(len(pen)), (x * wt[:, None]).T @ t
    )
    phi = -2 * f[:n]  # the Shapley value of the Fourier term T (odd |T|) is -2 f_T / |T| per member
    np.add.at(phi, triples.reshape(-1), np.repeat(-2 * f[n:] / 3, 3))
    return phi


def shap_kernel(v: Game, n: int, budget: int, seed: int) -> np.ndarray:
    import shap

    np.random.seed(seed)
    kx = shap.KernelExplainer(v, np.zeros((1, n)))
    return np.asarray(kx.shap_values(np.ones((1, n)), nsamples=budget, silent=True, l1_reg=False)).reshape(
        -1
    )[:n]


def cubic_random(v: Game, n: int, budget: int, seed: int) -> np.ndarray:
    return cubic(v, n, budget, seed, pick="random")


def cubic_true(v: Game, n: int, budget: int, seed: int) -> np.ndarray:
    return cubic(v, n, budget, seed, pick="true")


ESTIMATORS = {
    "leverage": leverage,
    "ra_msr": ra_msr,
    "ra_reg": ra_reg,
    "enum_1": enum_1,
    "perm": perm,
    "cubic": cubic,
    "cubic_random": cubic_random,
    "cubic_true": cubic_true,
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="32,64,128,256")
    ap.add_argument("--games", type=int, default=3)
    ap.add_argument(
        "--estimators",
        default="leverage,ra_msr,ra_reg,enum_1,perm,cubic",
        help=f"comma-separated, of {', '.join(ESTIMATORS)}",
    )
    args = ap.parse_args()
    names = args.estimators.split(",")
    print(f"RMSE / shap KernelExplainer(l1_reg=False) RMSE, {args.games} games per cell")
    print(f"{'F':>4} {'evals':>6} {'shap':>8} | " + " ".join(f"{k:>8}" for k in names))
    for n in (int(x) for x in args.sizes.split(",")):
        for budget in (5 * n, 10 * n, 20 * n):
            errs: dict[str, list[float]] = {k: [] for k in ["shap", *names]}
            for game in range(args.games):
                v, exact = make_game(n, game)
                for k in errs:
                    est = shap_kernel if k == "shap" else ESTIMATORS[k]
                    errs[k].append(float(np.sqrt(((est(v, n, budget, game) - exact) ** 2).mean())))
            base = float(np.mean(errs["shap"]))
            ratios = " ".join(f"{np.mean(errs[k]) / base:>8.3f}" for k in names)
            print(f"{n:>4} {budget:>6} {base:>8.4f} | {ratios}", flush=True)
    return 0


if __name__ == "__main__":
    t0 = time.time()
    rc = main()
    print(f"({time.time() - t0:.1f} s)")
    raise SystemExit(rc)
