"""Faithfulness without retraining: faithfulness correlation, sensitivity-n, infidelity, IROF.

* :func:`faithfulness_correlation` -- Bhatt, Weller & Moura, "Evaluating and aggregating
  feature-based model explanations" (IJCAI 2020), Sec. 3 (faithfulness ``mu_F``): the Pearson
  correlation, over random subsets ``S`` of ``|S|`` features, between the sum of the
  attributions in ``S`` and the drop of the output when ``S`` is set to a baseline.
* :func:`sensitivity_n` -- Ancona, Ceolini, Oeztireli & Gross, "Towards better understanding of
  gradient-based attribution methods for deep neural networks" (ICLR 2018), Sec. 3.3: the same
  correlation for every subset size ``n``; a curve over ``n`` and its mean.
* :func:`infidelity` -- Yeh, Hsieh, Suggala, Inouye & Ravikumar, "On the (in)fidelity and
  sensitivity of explanations" (NeurIPS 2019), Def. 2.1:
  ``E_I[(I^T Phi - (f(x) - f(x - I)))^2]`` with the explanation optimally scaled first
  (released code); perturbations: the noisy baseline or square removal (Sec. 4).
* :func:`irof` -- Rieger & Hansen, "IROF: a low resource evaluation metric for explanation
  methods" (ICLR-W 2020), Sec. 3: remove superpixels (here supervoxels) in the order of their
  mean attribution, replacing them by the mean colour; area over the curve of the class
  score normalised by the clean clip's score.

A *feature* is a pixel (all channels together) or a ranking unit of
:mod:`removalx.metrics.units` (``patch``, ``superpixel``, ``supervoxel``). Every random draw
comes from one ``torch.Generator`` seeded by ``seed``. Forward passes are batched and run
under ``torch.inference_mode``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Literal

import torch
from torch import Tensor

from removalx.core.classifier import VideoClassifier
from removalx.errors import ConfigError
from removalx.metrics.perturbation import _fill_value, _score, substrate
from removalx.metrics.units import unit_labels
from removalx.models import as_classifier

__all__ = [
    "faithfulness_correlation",
    "feature_labels",
    "infidelity",
    "irof",
    "pearson",
    "sensitivity_n",
    "subset_drops",
]

FeatureUnit = Literal["pixel", "patch", "superpixel", "supervoxel"]
Behavior = Literal["probability", "logit"]


def pearson(a: Tensor, b: Tensor) -> float:
    """Pearson correlation of two 1-D tensors (``nan`` when either is constant)."""
    a, b = a.double() - a.double().mean(), b.double() - b.double().mean()
    den = math.sqrt(float((a * a).sum()) * float((b * b).sum()))
    return float((a * b).sum()) / den if den > 0 else float("nan")


def feature_labels(
    video: Tensor,
    unit: FeatureUnit = "pixel",
    *,
    patch: int = 7,
    superpixels: int = 256,
    labels: Tensor | None = None,
) -> Tensor:
    """``long[T, H, W]`` feature id of every pixel (``pixel``: its raster index).

    ``labels`` given wins; otherwise :func:`removalx.metrics.units.unit_labels` makes them.
    """
    t, h, w = (int(s) for s in video.shape[:3])
    if labels is not None:
        if tuple(labels.shape) != (t, h, w):
            raise ConfigError(
                f"labels have shape {tuple(labels.shape)}, the clip {(t, h, w)}.",
                "Give one feature id per pixel, long[T, H, W].",
            )
        _, inv = torch.unique(labels.reshape(-1), return_inverse=True)
        return inv.reshape(t, h, w).long()
    made = unit_labels(video.detach().cpu(), unit, patch=patch, superpixels=superpixels)  # type: ignore[arg-type]
    return torch.arange(t * h * w).reshape(t, h, w) if made is None else made.long()


def _check_map(video: Tensor, importance: Tensor) -> None:
    if tuple(importance.shape) != tuple(video.shape[:3]):
        raise ConfigError(
            f"The attribution has shape {tuple(importance.shape)}, the video {tuple(video.shape)}; "
            "expected attribution [T, H, W] matching the video's first three dimensions.",
            "Score the attribution against the clip it explains.",
        )


def _base(
    clf: VideoClassifier, video: Tensor, fill: str, fill_value: Sequence[float] | None, sigma: float
) -> Tensor:
    """The substrate removed features show (see :func:`removalx.metrics.perturbation.substrate`)."""
    value, _ = _fill_value(clf, fill, fill_value)
    return substrate(video, fill, sigma, value)  # type: ignore[arg-type]


def _scores(
    clf: VideoClassifier,
    make: Callable[[int, int], Tensor],
    n: int,
    target: int,
    behavior: str,
    batch_size: int,
) -> Tensor:
    """``float64[n]`` target scores of the clips ``make(a, b)`` (rows ``a .. b - 1``), batched."""
    out: list[Tensor] = []
    with torch.inference_mode():
        for a in range(0, n, batch_size):
            b = min(n, a + batch_size)
            out.append(_score(clf(make(a, b)), target, behavior).double().cpu())
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.float64)


def _random_subsets(n_features: int, size: int, n_runs: int, generator: torch.Generator) -> Tensor:
    """``bool[n_runs, n_features]``: ``n_runs`` subsets of ``size`` features drawn without replacement."""
    if not 1 <= size <= n_features:
        raise ConfigError(
            f"subset size must be in [1, {n_features}] (the number of features), got {size}.",
            "Use a smaller subset_size, or a finer unit (pixel).",
        )
    keys = torch.rand(n_runs, n_features, generator=generator)
    idx = keys.argsort(dim=1)[:, :size]
    return torch.zeros(n_runs, n_features, dtype=torch.bool).scatter_(1, idx, True)


def subset_drops(
    model: Any,
    video: Tensor,
    importance: Tensor,
    target: int,
    subsets: Tensor,
    labels: Tensor,
    *,
    fill: str = "black",
    fill_value: Sequence[float] | None = None,
    blur_sigma: float = 10.0,
    behavior: Behavior = "logit",
    batch_size: int = 32,
) -> dict[str, Any]:
    """Sum of attributions and output drop of every subset (the pairs Bhatt et al. correlate).

    Parameters
    ----------
    subsets : Tensor
        ``bool[R, F]``: feature ``j`` is removed in run ``r``.
    labels : Tensor
        ``long[T, H, W]`` feature of every pixel, ids ``0 .. F - 1``.

    Returns
    -------
    dict
        ``att_sums`` and ``drops`` (``float64[R]``; drop = ``f(x) - f(x_S = baseline)``),
        ``full`` (the clean score) and ``n_forward``.
    """
    clf = as_classifier(model)
    _check_map(video, importance)
    clip = video.to(clf.device, torch.float32)
    base = _base(clf, clip, fill, fill_value, blur_sigma)
    lab = labels.to(clf.device).long()
    n_feat = int(lab.max()) + 1
    imp = importance.detach().double().cpu().reshape(-1)
    feat_att = torch.zeros(n_feat, dtype=torch.float64).index_add_(0, lab.reshape(-1).cpu(), imp)
    sets = subsets.to(clf.device)
    n0 = clf.n_forward

    def make(a: int, b: int) -> Tensor:
        hit = sets[a:b][:, lab].unsqueeze(-1)  # [B, T, H, W, 1]
        return torch.where(hit, base.expand(b - a, *clip.shape), clip.expand(b - a, *clip.shape))

    with torch.inference_mode():
        full = float(_score(clf(clip[None]), target, behavior)[0])
    ys = _scores(clf, make, sets.shape[0], target, behavior, batch_size)
    att = (subsets.cpu().double() * feat_att).sum(dim=1)
    return {"att_sums": att, "drops": full - ys, "full": full, "n_forward": clf.n_forward - n0}


def faithfulness_correlation(
    model: Any,
    video: Tensor,
    importance: Tensor,
    target: int,
    *,
    subset_size: int = 224,
    n_runs: int = 100,
    unit: FeatureUnit = "pixel",
    labels: Tensor | None = None,
    patch: int = 7,
    superpixels: int = 256,
    seed: int = 0,
    subsets: Tensor | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """Faithfulness correlation ``mu_F`` (Bhatt et al. 2020, Sec. 3), in [-1, 1], higher is better.

    ``n_runs`` random subsets of ``subset_size`` features (``unit``) are set to the baseline
    (``fill``); the value is the Pearson correlation between the subsets' attribution sums and
    the output drops. ``subsets`` (``bool[R, F]``) replaces the random draw. ``kwargs`` go to
    :func:`subset_drops` (``fill``, ``behavior``, ``batch_size`` ...).
    """
    lab = feature_labels(video, unit, patch=patch, superpixels=superpixels, labels=labels)
    n_feat = int(lab.max()) + 1
    if subsets is None:
        subsets = _random_subsets(n_feat, subset_size, n_runs, torch.Generator().manual_seed(seed))
    out = subset_drops(model, video, importance, target, subsets, lab, **kwargs)
    out["value"] = pearson(out["att_sums"], out["drops"])
    out["n_features"] = n_feat
    return out


def sensitivity_n(
    model: Any,
    video: Tensor,
    importance: Tensor,
    target: int,
    *,
    fractions: Sequence[float] = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.8),
    n_subsets: int = 100,
    unit: FeatureUnit = "pixel",
    labels: Tensor | None = None,
    patch: int = 7,
    superpixels: int = 256,
    seed: int = 0,
    **kwargs: Any,
) -> dict[str, Any]:
    """Sensitivity-n (Ancona et al. 2018, Sec. 3.3): one correlation per subset size ``n``.

    ``n = max(1, round(fraction * F))`` for each of ``fractions`` of the ``F`` features; for
    every ``n``, ``n_subsets`` random subsets are removed and the Pearson correlation of the
    attribution sums and the output drops is recorded. ``value`` is the mean of the curve
    (sizes with an undefined correlation are left out), in [-1, 1], higher is better.
    """
    lab = feature_labels(video, unit, patch=patch, superpixels=superpixels, labels=labels)
    n_feat = int(lab.max()) + 1
    ns = sorted({max(1, min(n_feat, round(f * n_feat))) for f in fractions})
    gen = torch.Generator().manual_seed(seed)
    sets = torch.cat([_random_subsets(n_feat, n, n_subsets, gen) for n in ns])
    out = subset_drops(model, video, importance, target, sets, lab, **kwargs)
    att, drops = out["att_sums"].view(len(ns), n_subsets), out["drops"].view(len(ns), n_subsets)
    curve = [pearson(att[i], drops[i]) for i in range(len(ns))]
    finite = [c for c in curve if math.isfinite(c)]
    return {
        "value": sum(finite) / len(finite) if finite else float("nan"),
        "n": ns,
        "curve": curve,
        "n_features": n_feat,
        "full": out["full"],
        "n_forward": out["n_forward"],
    }


def _square_draw(
    clip: Tensor, base: Tensor, imp: Tensor, square_max: int, gen: torch.Generator
) -> Callable[[int], tuple[Tensor, Tensor]]:
    """Random square tubes (all frames) removed to ``base``; ``I`` binary (Yeh et al. Sec. 4)."""
    t, h, w = (int(s) for s in clip.shape[:3])
    sides = torch.arange(1, min(square_max, h, w) + 1)
    counts = ((h - sides + 1) * (w - sides + 1)).double()  # squares of each side: uniform over all squares
    ys, xs = torch.arange(h).view(1, h, 1), torch.arange(w).view(1, 1, w)

    def draw(n: int) -> tuple[Tensor, Tensor]:
        side = sides[torch.multinomial(counts, n, replacement=True, generator=gen)]
        top = (torch.rand(n, generator=gen) * (h - side + 1)).long()
        left = (torch.rand(n, generator=gen) * (w - side + 1)).long()
        s, tp, lf = side.view(-1, 1, 1), top.view(-1, 1, 1), left.view(-1, 1, 1)
        sq = (ys >= tp) & (ys < tp + s) & (xs >= lf) & (xs < lf + s)  # [n, H, W]
        mask = sq.unsqueeze(1).expand(n, t, h, w).to(clip.device)
        clips = torch.where(mask.unsqueeze(-1), base.expand(n, *clip.shape), clip.expand(n, *clip.shape))
        dots = (mask.double() * imp).flatten(1).sum(1)
        return clips, dots.cpu()

    return draw


def _gaussian_draw(
    clip: Tensor, imp: Tensor, std: float, gen: torch.Generator
) -> Callable[[int], tuple[Tensor, Tensor]]:
    """Noisy baseline ``x0 = clip(std * eps, 0, 1)``, ``I = x - x0`` (Yeh et al. Sec. 4; released code)."""

    def draw(n: int) -> tuple[Tensor, Tensor]:
        x0 = (std * torch.randn(n, *clip.shape, generator=gen)).clamp_(0.0, 1.0).to(clip.device)
        dots = ((clip - x0).double().sum(-1) * imp).flatten(1).sum(1)
        return x0, dots.cpu()

    return draw


def _given_draw(clip: Tensor, imp: Tensor, given: Tensor) -> Callable[[int], tuple[Tensor, Tensor]]:
    """The clips ``x - I`` given by the caller, in order (``I = x - clip``)."""
    done = [0]

    def draw(n: int) -> tuple[Tensor, Tensor]:
        part = given[done[0] : done[0] + n]
        done[0] += n
        return part, ((clip - part).double().sum(-1) * imp).flatten(1).sum(1).cpu()

    return draw


def infidelity(
    model: Any,
    video: Tensor,
    importance: Tensor,
    target: int,
    *,
    perturbation: Literal["gaussian", "square"] = "gaussian",
    n_samples: int = 1000,
    noise_std: float = 0.2,
    square_max: int = 10,
    scale: bool = True,
    fill: str = "black",
    fill_value: Sequence[float] | None = None,
    blur_sigma: float = 10.0,
    behavior: Behavior = "logit",
    batch_size: int = 32,
    seed: int = 0,
    perturbed: Tensor | None = None,
) -> dict[str, Any]:
    """Infidelity ``E_I[(I^T Phi - (f(x) - f(x - I)))^2]`` (Yeh et al. 2019, Def. 2.1); lower is better.

    ``I^T Phi`` sums, over pixels, the attribution times the pixel's change summed over the
    channels. ``perturbation``: ``gaussian`` = the noisy baseline ``x - I = clip(noise_std *
    eps, 0, 1)`` per value; ``square`` = a square of side 1 .. ``square_max`` px, drawn
    uniformly among all such squares, removed to ``fill`` in every frame (a tube), ``I``
    binary (``I^T Phi`` = the attribution inside the tube). ``scale``: multiply ``I^T Phi`` by
    the least-squares factor ``beta = E[dy s] / E[s^2]`` first (the released code's optimal
    scaling). ``perturbed`` (``float[N, T, H, W, C]``, the clips ``x - I``) replaces the draw.
    """
    clf = as_classifier(model)
    _check_map(video, importance)
    clip = video.to(clf.device, torch.float32)
    imp = importance.detach().to(clf.device).double()
    gen = torch.Generator().manual_seed(seed)
    draw: Callable[[int], tuple[Tensor, Tensor]]
    if perturbed is not None:
        n_samples = int(perturbed.shape[0])
        draw = _given_draw(clip, imp, perturbed.to(clf.device, torch.float32))
    elif perturbation == "gaussian":
        draw = _gaussian_draw(clip, imp, noise_std, gen)
    elif perturbation == "square":
        draw = _square_draw(clip, _base(clf, clip, fill, fill_value, blur_sigma), imp, square_max, gen)
    else:
        raise ConfigError(f"Unknown perturbation {str(perturbation)[:40]!r}.", "Use 'gaussian' or 'square'.")
    n0 = clf.n_forward
    dots: list[Tensor] = []
    ys: list[Tensor] = []
    with torch.inference_mode():
        full = float(_score(clf(clip[None]), target, behavior)[0])
        for a in range(0, n_samples, batch_size):
            clips, dot = draw(min(batch_size, n_samples - a))
            ys.append(_score(clf(clips), target, behavior).double().cpu())
            dots.append(dot)
    s, dy = torch.cat(dots), full - torch.cat(ys)
    beta = float((dy * s).mean() / (s * s).mean()) if scale and float((s * s).mean()) > 0 else 1.0
    value = float(((dy - beta * s) ** 2).mean())
    return {
        "value": value,
        "beta": beta,
        "full": full,
        "n_samples": n_samples,
        "n_forward": clf.n_forward - n0,
    }


def irof(
    model: Any,
    video: Tensor,
    importance: Tensor,
    target: int,
    *,
    unit: FeatureUnit = "supervoxel",
    superpixels: int = 100,
    patch: int = 7,
    labels: Tensor | None = None,
    fill: str = "mean",
    fill_value: Sequence[float] | None = None,
    blur_sigma: float = 10.0,
    behavior: Behavior = "probability",
    batch_size: int = 32,
    seed: int = 0,
) -> dict[str, Any]:
    """IROF (Rieger & Hansen 2020, Sec. 3): area over the normalised class-score curve; higher is better.

    The segments (``unit``; default 3D SLIC supervoxels, ``superpixels`` per frame) are ranked
    by their mean attribution (ties: a seeded random order) and replaced, most relevant first
    and cumulatively, by ``fill`` (default the clip's mean colour). With ``y_k = f(x_k) / f(x)``
    after ``k`` of ``N`` segments (``y_0 = 1``) over ``k / N``, the value is
    ``1 - trapezoid area`` (at most 1; below 0 only when removal raises the score).
    """
    clf = as_classifier(model)
    _check_map(video, importance)
    lab = feature_labels(video, unit, patch=patch, superpixels=superpixels, labels=labels)
    n_seg = int(lab.max()) + 1
    flat = lab.reshape(-1)
    imp = importance.detach().double().cpu().reshape(-1)
    sums = torch.zeros(n_seg, dtype=torch.float64).index_add_(0, flat, imp)
    means = sums / torch.bincount(flat, minlength=n_seg).double()
    perm = torch.randperm(n_seg, generator=torch.Generator().manual_seed(seed))
    order = perm[torch.sort(-means[perm], stable=True).indices]  # descending mean, random ties
    rank = torch.empty(n_seg, dtype=torch.long)
    rank[order] = torch.arange(n_seg)
    clip = video.to(clf.device, torch.float32)
    base = _base(clf, clip, fill, fill_value, blur_sigma)
    pix_rank = rank[lab].to(clf.device)
    n0 = clf.n_forward

    def make(a: int, b: int) -> Tensor:
        k = torch.arange(a + 1, b + 1, device=clf.device).view(-1, 1, 1, 1)
        hit = (pix_rank < k).unsqueeze(-1)
        return torch.where(hit, base.expand(b - a, *clip.shape), clip.expand(b - a, *clip.shape))

    with torch.inference_mode():
        full = float(_score(clf(clip[None]), target, behavior)[0])
    ys = _scores(clf, make, n_seg, target, behavior, batch_size)
    y = (
        torch.cat([torch.ones(1, dtype=torch.float64), ys / full])
        if full != 0
        else torch.full((n_seg + 1,), math.nan)
    )
    x = torch.arange(n_seg + 1, dtype=torch.float64) / n_seg
    value = 1.0 - float(torch.trapezoid(y, x))
    return {
        "value": value,
        "curve": {"x": [round(float(v), 6) for v in x], "y": [round(float(v), 6) for v in y]},
        "n_segments": n_seg,
        "full": full,
        "n_forward": clf.n_forward - n0,
    }
