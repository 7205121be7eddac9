"""Insertion / deletion perturbation curves, their AUC and minimal masks.

The causal metrics of Petsiuk et al. as used in "removal-based video explanations" (Sec. 4.6.1)
and in the STEP journal paper (Sec. IV-A, Eq. 12-19): the pixels of a clip are split into
``L`` ordered subsets (ranking *units*: single pixels, 7x7 patches per frame, or 3D SLIC
superpixels), ordered by attribution (MoRF = most relevant first, LeRF = least relevant
first), and removed from the clip (deletion, Eq. 17-18) or inserted into a substrate
(insertion, Eq. 13-15) one step at a time, recording the target probability after each step.
The area under that curve (trapezoid rule over the fraction of pixels perturbed, ``x`` in
[0, 1]) is the metric: low is good for deletion + MoRF, high for insertion + MoRF.

The minimal mask of Sec. 4.6.1 (smallest share of pixels that keeps / destroys the
prediction at a threshold) is read from the same curve (:func:`minimal_mask`), so it costs no
extra forward pass.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor

from removalx.errors import ConfigError
from removalx.filters import blur_frames
from removalx.models import VideoClassifier, as_classifier
from removalx.types import Attribution

__all__ = [
    "Curve",
    "auc",
    "minimal_mask",
    "patch_labels",
    "perturbation_curve",
    "substrate",
    "unit_labels",
]

Mode = Literal["deletion", "insertion"]
Order = Literal["morf", "lerf"]
Unit = Literal["pixel", "patch", "superpixel"]
Substrate = Literal["black", "blur", "gray", "mean"]


@dataclass
class Curve:
    """A perturbation curve.

    Attributes
    ----------
    x : Tensor
        ``float64[L + 1]`` fraction of pixels perturbed (removed for deletion, inserted for
        insertion) after each step, from 0 to 1.
    y : Tensor
        ``float64[L + 1]`` target probability (or logit) after each step.
    mode, order, unit : str
        How the curve was made.
    meta : dict
        ``n_units``, ``n_forward``, ``target``, ``full`` (the clean-clip score).
    """

    x: Tensor
    y: Tensor
    mode: str
    order: str
    unit: str
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def auc(self) -> float:
        return auc(self.x, self.y)

    def to_dict(self) -> dict[str, Any]:
        return {
            "x": [round(float(v), 6) for v in self.x],
            "y": [round(float(v), 6) for v in self.y],
            "mode": self.mode,
            "order": self.order,
            "unit": self.unit,
            **self.meta,
        }


def auc(x: Tensor | list[float], y: Tensor | list[float]) -> float:
    """Area under ``y(x)`` by the trapezoid rule (``x`` increasing, normally in [0, 1]).

    Examples
    --------
    >>> auc([0.0, 0.5, 1.0], [1.0, 0.5, 0.0])
    0.5
    """
    xt = torch.as_tensor(x, dtype=torch.float64)
    yt = torch.as_tensor(y, dtype=torch.float64)
    if xt.shape != yt.shape or xt.dim() != 1 or xt.numel() < 2:
        raise ConfigError(
            f"auc needs two 1D sequences of equal length >= 2, got shapes {tuple(xt.shape)} and {tuple(yt.shape)}.",
            "Pass the curve's x (fractions) and y (scores).",
        )
    if bool((xt[1:] < xt[:-1]).any()):
        raise ConfigError("auc needs increasing x.", "Sort the curve by x first.")
    return float(torch.trapezoid(yt, xt))


def patch_labels(shape: tuple[int, int, int], patch: int = 7) -> Tensor:
    """``long[T, H, W]``: non-overlapping ``patch x patch`` blocks, separate in every frame.

    The patch unit of the STEP journal paper (Sec. V-A: 7x7 patches on 112x112 frames).
    """
    t, h, w = shape
    if patch < 1:
        raise ConfigError(f"patch must be >= 1 pixel, got {patch}.", "Use patch=7 (the paper's value).")
    nh, nw = -(-h // patch), -(-w // patch)
    rows = (torch.arange(h) // patch).view(1, h, 1)
    cols = (torch.arange(w) // patch).view(1, 1, w)
    frames = torch.arange(t).view(t, 1, 1)
    return (frames * nh * nw + rows * nw + cols).long()


def unit_labels(
    video: Tensor,
    unit: Unit,
    *,
    patch: int = 7,
    superpixels: int = 256,
    compactness: float = 10.0,
) -> Tensor | None:
    """Ranking units of ``video`` as ``long[T, H, W]`` labels (``None`` = single pixels).

    ``superpixel`` runs the ``slic3d`` segmentation plugin with ``superpixels`` segments
    *per frame* times ``T`` (STEP journal Sec. V-A: about 256 segments per 112x112 frame, so
    that patch and superpixel units perturb about the same number of pixels per step).
    """
    t = int(video.shape[0])
    if unit == "pixel":
        return None
    if unit == "patch":
        return patch_labels((t, int(video.shape[1]), int(video.shape[2])), patch)
    if unit == "superpixel":
        from removalx.registry import get_registry

        n_seg = max(1, min(superpixels * t, int(video.shape[0] * video.shape[1] * video.shape[2]) // 4))
        seg = get_registry().make("segmentation", "slic3d", {"n_segments": n_seg, "compactness": compactness})
        space = seg.segment(video.detach().float().cpu(), torch.Generator().manual_seed(0))
        return space.labels.cpu().long()
    raise ConfigError(f"Unknown ranking unit {unit!r}.", "Use 'pixel', 'patch' or 'superpixel'.")


def substrate(video: Tensor, kind: Substrate, blur_sigma: float = 10.0) -> Tensor:
    """What removed (not yet inserted) pixels show.

    ``black`` = 0 (removal-based video explanations Sec. 4.6.1), ``blur`` = a strongly
    blurred copy (ECCV-W study Sec. 4: insertion into blurred frames), ``gray`` = 0.5,
    ``mean`` = the clip's per-channel mean (a stand-in for STEP's training-set mean, Eq. 12).
    """
    if kind == "black":
        return torch.zeros_like(video)
    if kind == "gray":
        return torch.full_like(video, 0.5)
    if kind == "mean":
        return video.mean(dim=(0, 1, 2), keepdim=True).expand_as(video).clone()
    if kind == "blur":
        return blur_frames(video, blur_sigma)
    raise ConfigError(f"Unknown substrate {kind!r}.", "Use 'black', 'blur', 'gray' or 'mean'.")


def _pixel_rank(importance: Tensor, labels: Tensor | None, order: Order, seed: int) -> tuple[Tensor, Tensor, int]:
    """Rank of each pixel's unit in the perturbation order and the pixel count per rank.

    Returns ``(rank long[T*H*W], cum_pixels long[n_units], n_units)``; ties between equal
    scores are broken by a seeded random permutation (never by raster order, which would
    favour the top-left of flat maps).
    """
    flat = importance.reshape(-1).double()
    if labels is None:
        scores = flat
        unit_of = torch.arange(flat.numel())
    else:
        unit_of = labels.reshape(-1).long()
        n = int(unit_of.max()) + 1
        sums = torch.zeros(n, dtype=torch.float64).index_add_(0, unit_of, flat)
        counts = torch.bincount(unit_of, minlength=n).double()
        scores = sums / counts.clamp_min(1)
    n_units = scores.numel()
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(n_units, generator=g)
    key = -scores[perm] if order == "morf" else scores[perm]
    idx = torch.sort(key, stable=True).indices
    ordered = perm[idx]  # unit ids, first perturbed first
    rank_of_unit = torch.empty(n_units, dtype=torch.long)
    rank_of_unit[ordered] = torch.arange(n_units)
    sizes = torch.bincount(unit_of, minlength=n_units)[ordered]
    return rank_of_unit[unit_of], torch.cumsum(sizes, 0), n_units


def _score(logits: Tensor, target: int, behavior: str) -> Tensor:
    if behavior == "probability":
        return torch.softmax(logits.float(), dim=-1)[:, target]
    if behavior == "logit":
        return logits[:, target].float()
    raise ConfigError(f"Unknown behavior {behavior!r} for a metric.", "Use 'probability' or 'logit'.")


def perturbation_curve(
    model: Any,
    video: Tensor,
    importance: Tensor,
    target: int,
    *,
    mode: Mode = "deletion",
    order: Order = "morf",
    unit: Unit = "pixel",
    steps: int = 128,
    fill: Substrate = "black",
    blur_sigma: float = 10.0,
    patch: int = 7,
    superpixels: int = 256,
    labels: Tensor | None = None,
    behavior: str = "probability",
    batch_size: int = 16,
    seed: int = 0,
) -> Curve:
    """Insertion or deletion curve of ``importance`` (higher = more important).

    Parameters
    ----------
    model : VideoClassifier or callable
        The model explained.
    video : Tensor
        ``float32[T, H, W, C]`` in [0, 1].
    importance : Tensor
        ``float[T, H, W]``, higher = more important (use ``Attribution.importance()``).
    target : int
        Class whose probability the curve records.
    mode : {"deletion", "insertion"}
        Remove pixels from the clip (STEP Eq. 17-18) or insert them into the substrate (Eq. 13-15).
    order : {"morf", "lerf"}
        Most or least relevant units first (STEP Sec. IV-A).
    unit : {"pixel", "patch", "superpixel"}
        Ranking unit; a unit's score is the mean importance of its pixels.
    steps : int
        Number of steps ``L`` (the papers use 28 and 128); the curve has ``L + 1`` points.
        Step ``l`` perturbs the first ``round(l * n_units / L)`` units.
    fill : {"black", "blur", "gray", "mean"}
        Substrate (see :func:`substrate`).
    labels : Tensor, optional
        ``long[T, H, W]`` precomputed units (overrides ``unit``'s own segmentation).
    behavior : {"probability", "logit"}
        What is recorded: softmax probability (default, as in all three papers) or logit.
    batch_size : int
        Perturbed clips per forward pass (run on the model's device under ``inference_mode``).
    seed : int
        Seed of the tie-breaking permutation.

    Returns
    -------
    Curve
        ``x`` = fraction of pixels perturbed (exact, also for units of unequal size).
    """
    clf: VideoClassifier = as_classifier(model)
    if mode not in ("deletion", "insertion"):
        raise ConfigError(f"Unknown mode {mode!r}.", "Use 'deletion' or 'insertion'.")
    if order not in ("morf", "lerf"):
        raise ConfigError(f"Unknown order {order!r}.", "Use 'morf' or 'lerf'.")
    if steps < 1:
        raise ConfigError(f"steps must be >= 1, got {steps}.", "Use 128 or 28 (the papers' values).")
    if tuple(importance.shape) != tuple(video.shape[:3]):
        raise ConfigError(
            f"The attribution has shape {tuple(importance.shape)}, the video {tuple(video.shape)}; "
            "expected attribution [T, H, W] matching the video's first three dimensions.",
            "Score the attribution against the clip it explains.",
        )
    if labels is None:
        labels = unit_labels(video, unit, patch=patch, superpixels=superpixels)
    device = clf.device
    rank, cum, n_units = _pixel_rank(importance.detach().cpu(), labels, order, seed)
    k = torch.round(torch.arange(steps + 1, dtype=torch.float64) * n_units / steps).long()
    n_pix = rank.numel()
    perturbed = torch.cat([torch.zeros(1, dtype=torch.long), cum])[k]
    x = perturbed.double() / n_pix
    clip = video.to(device, torch.float32)
    base = substrate(clip, fill, blur_sigma)
    rank_d = rank.to(device).view(1, *video.shape[:3])
    k_d = k.to(device)
    ys: list[Tensor] = []
    n0 = clf.n_forward
    with torch.inference_mode():
        for start in range(0, steps + 1, batch_size):
            kk = k_d[start : start + batch_size].view(-1, 1, 1, 1)
            hit = (rank_d < kk).float()  # 1 where the unit has been perturbed
            keep = 1.0 - hit if mode == "deletion" else hit
            batch = torch.lerp(base.expand(kk.shape[0], *clip.shape), clip.expand(kk.shape[0], *clip.shape),
                               keep.unsqueeze(-1))
            ys.append(_score(clf(batch), target, behavior).double().cpu())
        full = float(_score(clf(clip[None]), target, behavior)[0])
    y = torch.cat(ys)
    meta = {"n_units": n_units, "n_forward": clf.n_forward - n0, "target": int(target), "full": full,
            "steps": steps, "fill": fill, "behavior": behavior}
    return Curve(x=x, y=y, mode=mode, order=order, unit=unit, meta=meta)


def curve_key(attribution: Attribution, params: dict[str, Any]) -> str:
    """Key of a curve in a ``curve_cache``: the attribution's values and the curve parameters."""
    h = hashlib.sha256(attribution.importance().detach().cpu().float().contiguous().numpy().tobytes())
    h.update(str(int(attribution.target)).encode())
    h.update(json.dumps(params, sort_keys=True, default=str).encode())
    return h.hexdigest()[:20]


def cached_curve(
    model: Any,
    video: Tensor,
    attribution: Attribution,
    cache: MutableMapping[str, Curve] | None,
    **params: Any,
) -> Curve:
    """:func:`perturbation_curve` of ``attribution.importance()``, reused from ``cache``.

    Metrics that read the same curve (``deletion`` AUC and the deletion ``minimal_mask``)
    pass the same ``curve_cache`` dict in their context and share the forward passes.
    """
    key = curve_key(attribution, params)
    if cache is not None and key in cache:
        return cache[key]
    curve = perturbation_curve(model, video, attribution.importance(), attribution.target, **params)
    if cache is not None:
        cache[key] = curve
    return curve


def minimal_mask(curve: Curve, thresholds: tuple[float, ...] | list[float], relative: bool = True) -> dict[float, float]:
    """Smallest fraction of pixels that keeps / destroys the prediction (Sec. 4.6.1).

    For an insertion curve: the smallest inserted fraction with ``y >= t * ref``; for a
    deletion curve: the smallest removed fraction with ``y <= (1 - t) * ref``, i.e. ``t`` is
    the share of the prediction kept (insertion) or destroyed (deletion). ``ref`` is the
    clean-clip score when ``relative`` (default, as models differ in confidence), else 1.
    The crossing is linearly interpolated between curve points; 1.0 when never reached.

    Returns
    -------
    dict
        ``{threshold: fraction in [0, 1]}``.
    """
    ref = float(curve.meta.get("full", 1.0)) if relative else 1.0
    x, y = curve.x.double(), curve.y.double()
    out: dict[float, float] = {}
    for t in thresholds:
        if curve.mode == "insertion":
            level = t * ref
            ok = y >= level
        else:
            level = (1.0 - t) * ref
            ok = y <= level
        idx = torch.nonzero(ok)
        if idx.numel() == 0:
            out[float(t)] = 1.0
            continue
        i = int(idx[0])
        if i == 0:
            out[float(t)] = float(x[0])
            continue
        y0, y1, x0, x1 = float(y[i - 1]), float(y[i]), float(x[i - 1]), float(x[i])
        frac = 1.0 if y1 == y0 else min(1.0, max(0.0, (level - y0) / (y1 - y0)))
        out[float(t)] = x0 + frac * (x1 - x0)
    return out
