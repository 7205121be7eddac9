"""ROAD: remove and debias, without retraining (Rong, Leemann et al., ICML 2022).

"A Consistent and Efficient Evaluation Strategy for Attribution Methods", Sec. 4: the top
(MoRF) or bottom (LeRF) share ``p`` of the pixels by attribution is removed and *imputed*
by the noisy linear imputation (Sec. 4.2): every removed pixel equals the weighted mean of
its neighbours -- known or removed themselves -- which is one sparse linear system per
clip, solved jointly for all channels; then Gaussian noise of std ``noise`` is added to the
imputed values. The released code (``road/imputations.py``) fixes what the paper leaves
open: neighbour weights 1/6 (direct) and 1/12 (diagonal) over the 8-neighbourhood, noise
0.01 on [0, 1] images, imputation before the model's normalisation.

``neighbourhood`` picks the graph:

* ``"2d"`` -- the paper's 8-neighbourhood inside each frame (frames imputed independently);
* ``"6"`` -- removalx's space-time extension: the 6 face neighbours in (t, y, x), weight 1/6;
* ``"26"`` -- removalx's space-time extension: all 26 neighbours, weight proportional to
  ``2**-(k - 1)`` for an offset with ``k`` non-zero coordinates (face 1, edge 1/2, corner 1/4,
  as the paper's direct : diagonal = 2 : 1), normalised to sum to 1.

Removed pixels in a connected group with no known neighbour at all (e.g. a whole frame
removed under ``"2d"``) have no equation that pins them; removalx fills them with the
per-channel mean of the clip's known pixels (removalx's choice; the released code's system
would be singular there).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from removalx.errors import ConfigError
from removalx.metrics.perturbation import _score
from removalx.models import as_classifier

__all__ = ["NEIGHBOURHOODS", "neighbour_weights", "noisy_linear_imputation", "road"]

Neighbourhood = Literal["2d", "6", "26"]
NEIGHBOURHOODS: tuple[str, ...] = ("2d", "6", "26")
#: The percentages of the released no-retraining experiments (``noretrain_params.json``).
ROAD_PERCENTAGES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 0.9)


def neighbour_weights(neighbourhood: Neighbourhood = "2d") -> list[tuple[tuple[int, int, int], float]]:
    """``[((dt, dy, dx), weight), ...]`` of a neighbourhood (see the module docstring)."""
    if neighbourhood == "2d":
        return [((0, dy, dx), 1 / 6 if dy == 0 or dx == 0 else 1 / 12) for dy, dx in _ring2d()]
    if neighbourhood == "6":
        faces = [(1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0), (0, 0, 1), (0, 0, -1)]
        return [(f, 1 / 6) for f in faces]
    if neighbourhood == "26":
        offs = [(a, b, c) for a, b, c in itertools.product((-1, 0, 1), repeat=3) if (a, b, c) != (0, 0, 0)]
        raw = [2.0 ** -(sum(c != 0 for c in o) - 1) for o in offs]
        total = sum(raw)
        return [(o, r / total) for o, r in zip(offs, raw, strict=True)]
    raise ConfigError(
        f"Unknown neighbourhood {str(neighbourhood)[:40]!r}.",
        "Use '2d' (the paper's, per frame), '6' or '26' (space-time).",
    )


def _ring2d() -> list[tuple[int, int]]:
    return [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]


def _system(
    removed: np.ndarray, values: np.ndarray, weights: list[tuple[tuple[int, int, int], float]]
) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray]:
    """The sparse system ``A z = b`` of the removed pixels (vectorised over each offset).

    Returns ``(A csr[N, N], b float64[N, C], idx long[N] flat positions, known_w float64[N])``;
    ``known_w`` is each unknown's total weight of known neighbours.
    """
    from scipy.sparse import coo_matrix

    t, h, w = removed.shape
    idx = np.flatnonzero(removed.reshape(-1))
    n = idx.size
    var_of = np.full(removed.size, -1, dtype=np.int64)
    var_of[idx] = np.arange(n)
    tt, yy, xx = np.unravel_index(idx, (t, h, w))
    flat_rm, flat_val = removed.reshape(-1), values.reshape(-1, values.shape[-1])
    b = np.zeros((n, values.shape[-1]))
    diag, known_w = np.zeros(n), np.zeros(n)
    rows, cols, vals = [], [], []
    for (dt, dy, dx), wt in weights:
        t2, y2, x2 = tt + dt, yy + dy, xx + dx
        ok = (t2 >= 0) & (t2 < t) & (y2 >= 0) & (y2 < h) & (x2 >= 0) & (x2 < w)
        me = np.flatnonzero(ok)
        nb = (t2[ok] * h + y2[ok]) * w + x2[ok]
        diag[me] -= wt
        unk = flat_rm[nb]
        rows.append(me[unk])
        cols.append(var_of[nb[unk]])
        vals.append(np.full(int(unk.sum()), wt))
        b[me[~unk]] -= wt * flat_val[nb[~unk]]
        known_w[me[~unk]] += wt
    r = np.concatenate([*rows, np.arange(n)])
    c = np.concatenate([*cols, np.arange(n)])
    v = np.concatenate([*vals, diag])
    return coo_matrix((v, (r, c)), shape=(n, n)).tocsr(), b, idx, known_w


def _anchored(a: Any, known_w: np.ndarray) -> np.ndarray:
    """``bool[N]``: the unknowns whose connected group has at least one known neighbour."""
    from scipy.sparse.csgraph import connected_components

    _, comp = connected_components(a, directed=False)
    has = np.zeros(int(comp.max()) + 1 if comp.size else 0, dtype=bool)
    np.logical_or.at(has, comp, known_w > 0)
    return has[comp]


def _solve(a: Any, b: np.ndarray, solver: str) -> np.ndarray:
    """Solve ``A z = b`` for every channel column of ``b`` (sparse direct or conjugate gradients)."""
    from scipy.sparse.linalg import cg, spsolve

    if solver == "spsolve":
        z = spsolve(a.tocsc(), b)
        return np.asarray(z).reshape(b.shape)
    out = np.empty_like(b)
    for ch in range(b.shape[1]):  # -A is symmetric positive definite on anchored groups
        z, info = cg(-a, -b[:, ch], rtol=1e-10, atol=0.0, maxiter=10 * a.shape[0])
        if info != 0:
            raise ConfigError(
                f"The conjugate-gradient solve of the ROAD imputation did not converge (info {info}).",
                "Use solver='spsolve'.",
            )
        out[:, ch] = z
    return out


def noisy_linear_imputation(
    video: Tensor,
    removed: Tensor,
    *,
    neighbourhood: Neighbourhood = "2d",
    noise: float = 0.01,
    generator: torch.Generator | None = None,
    solver: Literal["spsolve", "cg"] = "spsolve",
) -> Tensor:
    """ROAD's noisy linear imputation (Rong et al. 2022, Sec. 4.2) of the ``removed`` pixels.

    Parameters
    ----------
    video : Tensor
        ``float[T, H, W, C]`` in [0, 1].
    removed : Tensor
        ``bool[T, H, W]``, True where the pixel is removed (all channels).
    neighbourhood : {"2d", "6", "26"}
        The neighbour graph and weights (module docstring).
    noise : float
        Std of the Gaussian noise added to every imputed value (released code: 0.01).
    generator : torch.Generator, optional
        Source of the noise (default: seeded with 0).
    solver : {"spsolve", "cg"}
        SciPy's sparse direct solver, or conjugate gradients (large space-time systems).

    Returns
    -------
    Tensor
        The imputed clip, same shape, dtype and device as ``video`` (not clipped to [0, 1],
        as in the released code).
    """
    if tuple(removed.shape) != tuple(video.shape[:3]):
        raise ConfigError(
            f"removed has shape {tuple(removed.shape)}, the video {tuple(video.shape)}.",
            "Give one flag per pixel, bool[T, H, W].",
        )
    vals = video.detach().double().cpu().numpy()
    rm = removed.detach().bool().cpu().numpy()
    out = vals.reshape(-1, vals.shape[-1]).copy()
    a, b, idx, known_w = _system(rm, vals, neighbour_weights(neighbourhood))
    if idx.size == 0:
        return video.clone()
    anch = _anchored(a, known_w)
    if anch.any():
        sub = np.flatnonzero(anch)
        out[idx[sub]] = _solve(a[sub][:, sub], b[sub], solver)
    if not anch.all():
        known = ~rm.reshape(-1)
        fill = out[known].mean(axis=0) if known.any() else np.zeros(out.shape[-1])
        out[idx[~anch]] = fill
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    eps = torch.randn(idx.size, out.shape[-1], generator=gen, dtype=torch.float64).numpy()
    out[idx] += noise * eps
    return torch.from_numpy(out.reshape(vals.shape)).to(video.device, video.dtype)


def removal_masks(
    importance: Tensor, percentages: Sequence[float], order: Literal["morf", "lerf"], seed: int
) -> Tensor:
    """``bool[P, T, H, W]``: the ``floor(p * n)`` most (MoRF) / least (LeRF) important pixels per ``p``.

    Ties are broken by a seeded random order (the released code adds ``1e-4`` Gaussian noise).
    """
    flat = importance.detach().double().cpu().reshape(-1)
    n = flat.numel()
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    key = -flat[perm] if order == "morf" else flat[perm]
    ranked = perm[torch.sort(key, stable=True).indices]
    rank = torch.empty(n, dtype=torch.long)
    rank[ranked] = torch.arange(n)
    counts = torch.tensor([math.floor(p * n + 1e-9) for p in percentages]).view(-1, 1)
    return (rank.view(1, -1) < counts).view(len(percentages), *importance.shape)


def road(
    model: Any,
    video: Tensor,
    importance: Tensor,
    target: int,
    *,
    order: Literal["morf", "lerf"] = "morf",
    percentages: Sequence[float] = ROAD_PERCENTAGES,
    neighbourhood: Neighbourhood = "2d",
    noise: float = 0.01,
    behavior: Literal["probability", "logit"] = "probability",
    solver: Literal["spsolve", "cg"] = "spsolve",
    batch_size: int = 16,
    seed: int = 0,
) -> dict[str, Any]:
    """ROAD curve of one clip: the target's score after removing and imputing each share ``p``.

    MoRF removes the ``p`` most important pixels, LeRF the ``p`` least important (both over
    the share removed). ``value`` is the mean score over ``percentages`` (lower is better for
    MoRF, higher for LeRF); ``correct`` records whether the target stays the top class (the
    paper's accuracy, per clip). One forward pass per percentage plus one for the clean clip.
    """
    clf = as_classifier(model)
    if tuple(importance.shape) != tuple(video.shape[:3]):
        raise ConfigError(
            f"The attribution has shape {tuple(importance.shape)}, the video {tuple(video.shape)}.",
            "Score the attribution against the clip it explains.",
        )
    masks = removal_masks(importance, percentages, order, seed)
    gen = torch.Generator().manual_seed(seed)
    imputed = [
        noisy_linear_imputation(
            video, m, neighbourhood=neighbourhood, noise=noise, generator=gen, solver=solver
        )
        for m in masks
    ]
    n0 = clf.n_forward
    scores, correct = [], []
    with torch.inference_mode():
        full = float(_score(clf(video.to(clf.device, torch.float32)[None]), target, behavior)[0])
        for a in range(0, len(imputed), batch_size):
            logits = clf(torch.stack(imputed[a : a + batch_size]).to(clf.device, torch.float32))
            scores += _score(logits, target, behavior).double().cpu().tolist()
            correct += (logits.argmax(-1) == target).cpu().tolist()
    return {
        "value": sum(scores) / len(scores),
        "curve": {"x": [float(p) for p in percentages], "y": [round(s, 6) for s in scores]},
        "correct": [bool(c) for c in correct],
        "accuracy": sum(correct) / len(correct),
        "full": full,
        "order": order,
        "n_forward": clf.n_forward - n0,
    }
