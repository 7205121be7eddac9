"""Insertion / deletion perturbation curves, their area and minimal masks.

The causal metrics of Petsiuk et al. as used in "removal-based video explanations" (Sec. 4.6.1),
the STEP journal paper (Sec. IV-A, Eq. 12-19), the adaptive occlusion paper (Sec. 4.2) and the
ECCV-W video attribution study (Sec. 3.3): the pixels of a clip are split into ranking
*units* (:mod:`removalx.metrics.units`), ordered by attribution (MoRF = most relevant first,
LeRF = least relevant first), and removed from the clip (deletion, Eq. 17-18) or inserted
into a substrate (insertion, Eq. 13-15) in ``L`` steps, recording the target probability after
each step. The area under that curve is the metric (:func:`auc`): the trapezoid rule over the
fraction of pixels perturbed, or the mean over the steps ``l = 1 .. L`` (STEP Eq. 19). Low is
good for deletion + MoRF, high for insertion + MoRF. :mod:`removalx.metrics.presets` bundles
each paper's settings.

The minimal mask of "removal-based video explanations" Sec. 4.6.1 (smallest share of pixels
that keeps / destroys the prediction at a threshold) is read from the same curve
(:func:`minimal_mask`), so it costs no extra forward pass.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor

from removalx.core.classifier import VideoClassifier
from removalx.core.types import Attribution
from removalx.errors import ConfigError
from removalx.incremental.session import incremental as _incremental
from removalx.metrics.units import Unit, patch_labels, unit_labels
from removalx.models import as_classifier
from removalx.video.filters import blur_frames

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
Substrate = Literal["black", "blur", "gray", "mean", "dataset_mean"]
AucFormula = Literal["trapezoid", "step_mean"]
Aggregate = Literal["mean", "sum"]
SUBSTRATES: tuple[str, ...] = ("black", "blur", "gray", "mean", "dataset_mean")
#: Most units ``steps="all"`` accepts (one forward pass per unit).
MAX_ALL_STEPS = 10_000
#: Score each distinct clip of a curve once (``False``: every step, as before; a switch for the tests).
_DISTINCT_STEPS = True


@dataclass
class Curve:
    """A perturbation curve.

    Attributes
    ----------
    x : Tensor
        ``float64[L + 1]`` fraction of pixels perturbed (removed for deletion, inserted for
        insertion) after each step ``l = 0 .. L``, from 0 to 1.
    y : Tensor
        ``float64[L + 1]`` target probability (or logit) after each step.
    mode, order, unit : str
        How the curve was made.
    meta : dict
        ``n_units``, ``n_forward``, ``target``, ``full`` (the clean-clip score), ``steps``
        (the resolved ``L``), the substrate (``fill``, ``fill_value``, ``fill_source``) and the
        other settings.
    """

    x: Tensor
    y: Tensor
    mode: str
    order: str
    unit: str
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def auc(self) -> float:
        """Trapezoid area over the fraction of pixels perturbed (see :func:`auc`)."""
        return auc(self.x, self.y)

    def area(self, formula: AucFormula = "trapezoid") -> float:
        """Area of the curve by ``formula`` (see :func:`auc`)."""
        return auc(self.x, self.y, formula)

    def to_dict(self) -> dict[str, Any]:
        return {
            "x": [round(float(v), 6) for v in self.x],
            "y": [round(float(v), 6) for v in self.y],
            "mode": self.mode,
            "order": self.order,
            "unit": self.unit,
            **self.meta,
        }


def auc(x: Tensor | Sequence[float], y: Tensor | Sequence[float], formula: AucFormula = "trapezoid") -> float:
    """Area of the curve ``y`` over ``x`` (``x`` increasing, normally in [0, 1]).

    Parameters
    ----------
    x, y : sequence of float
        The curve's points ``l = 0 .. L``.
    formula : {"trapezoid", "step_mean"}
        ``trapezoid``: trapezoid rule over ``x`` (Petsiuk et al.; "removal-based video
        explanations", the adaptive occlusion paper and the ECCV-W study plot the curve over
        the fraction of pixels). ``step_mean``: STEP journal Eq. 19, ``(1/L) sum_{l=1..L} y_l``
        (``x`` is not used; ``y_0`` is left out). With equal steps the two differ by
        ``(y_0 - y_L) / (2L)``.

    Examples
    --------
    >>> auc([0.0, 0.5, 1.0], [1.0, 0.5, 0.0])
    0.5
    >>> auc([0.0, 0.5, 1.0], [1.0, 0.5, 0.0], "step_mean")
    0.25
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
    if formula == "trapezoid":
        return float(torch.trapezoid(yt, xt))
    if formula == "step_mean":
        return float(yt[1:].mean())
    raise ConfigError(f"Unknown AUC formula {str(formula)[:40]!r}.", "Use 'trapezoid' or 'step_mean'.")


def substrate(
    video: Tensor, kind: Substrate, blur_sigma: float = 10.0, value: Sequence[float] | Tensor | None = None
) -> Tensor:
    """What removed (not yet inserted) pixels show.

    ``black`` = 0 ("removal-based video explanations" Sec. 4.6.1), ``blur`` = a blurred copy
    (Gaussian of ``blur_sigma`` px per frame; the ECCV-W study inserts into highly blurred
    frames), ``gray`` = 0.5 (the ECCV-W study deletes to gray), ``mean`` = the clip's own
    per-channel mean colour, ``dataset_mean`` = the per-channel colour ``value`` (STEP Eq. 12:
    the mean of the training data, see :func:`removalx.metrics.dataset_mean`).
    """
    if kind == "black":
        return torch.zeros_like(video)
    if kind == "gray":
        return torch.full_like(video, 0.5)
    if kind == "mean":
        return video.mean(dim=(0, 1, 2), keepdim=True).expand_as(video).clone()
    if kind == "blur":
        return blur_frames(video, blur_sigma)
    if kind == "dataset_mean":
        if value is None:
            raise ConfigError(
                "The 'dataset_mean' substrate needs the mean colour of the training data.",
                "Give fill_value: [r, g, b] (removalx.metrics.dataset_mean(...) computes it).",
            )
        v = torch.as_tensor(value, dtype=video.dtype, device=video.device).reshape(-1)
        if v.numel() != video.shape[-1]:
            raise ConfigError(
                f"fill_value has {v.numel()} channel values, the clip has {video.shape[-1]} channels.",
                "Give one value per channel, e.g. fill_value: [0.43, 0.39, 0.38].",
            )
        return v.view(1, 1, 1, -1).expand_as(video).clone()
    if kind == "model_mean":  # the removal plugins' constant value, not a metric substrate
        raise ConfigError(
            "The metrics have no 'model_mean' substrate (it is a value of the 'constant' removal).",
            "Use fill 'dataset_mean' without fill_value: it fills the model's normalisation mean "
            "(or the dataset's mean colour in evaluate/compare/ablate).",
        )
    raise ConfigError(f"Unknown substrate {str(kind)[:40]!r}.", f"Use one of {', '.join(SUBSTRATES)}.")


def _pixel_rank(
    importance: Tensor, labels: Tensor | None, order: Order, seed: int, aggregate: Aggregate = "mean"
) -> tuple[Tensor, Tensor, int]:
    """Rank of each pixel's unit in the perturbation order and the pixel count per rank.

    A unit's score is the ``aggregate`` (mean or sum) of its pixels' importance. Returns
    ``(rank long[T*H*W], cum_pixels long[n_units], n_units)``; ties between equal scores are
    broken by a seeded random permutation (never by raster order, which would favour the
    top-left of flat maps).
    """
    flat = importance.reshape(-1).double()
    if labels is None:
        scores = flat
        unit_of = torch.arange(flat.numel())
    else:
        unit_of = labels.reshape(-1).long()
        n = int(unit_of.max()) + 1
        sums = torch.zeros(n, dtype=torch.float64).index_add_(0, unit_of, flat)
        if aggregate == "sum":
            scores = sums
        elif aggregate == "mean":
            counts = torch.bincount(unit_of, minlength=n).double()
            scores = sums / counts.clamp_min(1)
        else:
            raise ConfigError(f"Unknown aggregate {str(aggregate)[:40]!r}.", "Use 'mean' or 'sum'.")
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


def _fill_value(
    clf: VideoClassifier, fill: str, fill_value: Sequence[float] | None
) -> tuple[list[float] | None, str | None]:
    """The ``dataset_mean`` colour and where it came from (``fill_value`` or the model's ``mean``)."""
    if fill != "dataset_mean":
        return None, None
    if fill_value is not None:
        return [float(v) for v in fill_value], "fill_value"
    mean = getattr(clf, "mean", None)
    if mean is not None:
        return [float(v) for v in torch.as_tensor(mean).reshape(-1).tolist()], "model.mean"
    raise ConfigError(
        "fill 'dataset_mean' needs the mean colour of the training data: no fill_value was given and "
        "the model has no normalisation mean.",
        "Give fill_value: [r, g, b] (compute it once with removalx.metrics.dataset_mean('DATASET')), "
        "or wrap the model with VideoClassifier(..., mean=[...]).",
    )


def step_counts(n_units: int, steps: int) -> Tensor:
    """Units perturbed after each step ``l = 0 .. L``: ``floor(l * n_units / L)`` (exact integers)."""
    return torch.arange(steps + 1, dtype=torch.long) * n_units // steps


def _check_curve_settings(video: Tensor, importance: Tensor, mode: str, order: str, steps: Any) -> None:
    """Refuse an unknown ``mode`` / ``order``, a bad ``steps`` or an attribution of the wrong shape."""
    if mode not in ("deletion", "insertion"):
        raise ConfigError(f"Unknown mode {str(mode)[:40]!r}.", "Use 'deletion' or 'insertion'.")
    if order not in ("morf", "lerf"):
        raise ConfigError(f"Unknown order {str(order)[:40]!r}.", "Use 'morf' or 'lerf'.")
    if steps != "all" and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise ConfigError(
            f"steps must be an integer >= 1 or 'all', got {str(steps)[:40]!r}.",
            "Use 128 or 28 (the papers' values), or 'all' (one unit per step).",
        )
    if tuple(importance.shape) != tuple(video.shape[:3]):
        raise ConfigError(
            f"The attribution has shape {tuple(importance.shape)}, the video {tuple(video.shape)}; "
            "expected attribution [T, H, W] matching the video's first three dimensions.",
            "Score the attribution against the clip it explains.",
        )


@dataclass
class _StepPlan:
    """Which pixels each step of a curve perturbs."""

    rank: Tensor  # long[T*H*W]: rank of each pixel's unit in the perturbation order
    n_units: int
    n_steps: int  # L
    k: Tensor  # long[L + 1]: units perturbed after each step
    x: Tensor  # float64[L + 1]: fraction of pixels perturbed after each step


def _plan_steps(
    importance: Tensor, labels: Tensor | None, order: Order, seed: int, aggregate: Aggregate, steps: int | str
) -> _StepPlan:
    """Rank the units and resolve ``steps`` (``"all"``: one unit per step, at most :data:`MAX_ALL_STEPS`)."""
    rank, cum, n_units = _pixel_rank(importance.detach().cpu(), labels, order, seed, aggregate)
    n_steps = n_units if steps == "all" else int(steps)
    if steps == "all" and n_units > MAX_ALL_STEPS:
        raise ConfigError(
            f"steps 'all' would perturb {n_units} units one by one ({n_units + 2} forward passes; the limit "
            f"for 'all' is {MAX_ALL_STEPS}).",
            "Use fewer units (unit: level with levels: 200, or patch / superpixel) or a number of steps (steps: 128).",
        )
    k = step_counts(n_units, n_steps)
    n_pix = rank.numel()
    perturbed = torch.cat([torch.zeros(1, dtype=torch.long), cum])[k]
    return _StepPlan(rank, n_units, n_steps, k, perturbed.double() / n_pix)


def _fill_meta(fill: str, value: list[float] | None, source: str | None) -> dict[str, Any]:
    """The substrate entries of a curve's ``meta``."""
    return {
        "fill": fill,
        "fill_value": None if value is None else [round(v, 6) for v in value],
        "fill_source": source,
    }


@dataclass
class _StepRun:
    """The perturbed clips of a curve's steps and the target's score on each."""

    clf: VideoClassifier
    clip: Tensor  # float32[T, H, W, C] on the model's device
    base: Tensor  # the substrate, same shape
    rank: Tensor  # long[1, T, H, W]: rank of each pixel's unit in the perturbation order
    mode: str
    target: int
    behavior: str

    def batch(self, counts: Tensor) -> Tensor:
        """The clips after perturbing the first ``counts`` (``long[B, 1, 1, 1]``) units each."""
        hit = (self.rank < counts).float()  # 1 where the unit has been perturbed
        keep = 1.0 - hit if self.mode == "deletion" else hit
        n = counts.shape[0]
        return torch.lerp(
            self.base.expand(n, *self.clip.shape), self.clip.expand(n, *self.clip.shape), keep.unsqueeze(-1)
        )

    def scores(self, k: Tensor, batch_size: int, incremental: bool) -> Tensor:
        """``float64[L + 1]`` scores after each step (``k``: units perturbed per step, on the device).

        Steps that perturb the same number of units (``L > n_units``: ``k`` repeats) are the
        same clip, so each distinct clip is scored once and its score repeated: the curve keeps
        its ``L + 1`` points and the forward passes stop growing with ``L`` beyond the units
        (at most ``n_units + 2 * batch_size``). The scores are bit for bit those of scoring
        every step: a model's output may differ in the last bit with the batch size (CPU
        kernels are chosen by shape), so every clip is scored in a batch of the size it had
        before: the steps of the full batches (``batch_size`` each; the last of their distinct
        clips is padded with copies) and the last, shorter batch of steps as it was.
        """
        n_full = k.numel() - k.numel() % batch_size  # steps in full batches (the rest: one batch)
        distinct, repeats = torch.unique_consecutive(k[:n_full], return_counts=True)
        if not _DISTINCT_STEPS or distinct.numel() == n_full:  # no step repeats: every step scored
            return self._score_batches(k, batch_size, incremental, n_full)
        pad = -distinct.numel() % batch_size  # copies of the last distinct clip: full batches only
        head = torch.cat([distinct, distinct[-1:].expand(pad)])
        y = self._score_batches(torch.cat([head, k[n_full:]]), batch_size, incremental, head.numel())
        return torch.cat([y[: distinct.numel()].repeat_interleave(repeats.cpu()), y[head.numel() :]])

    def _score_batches(self, k: Tensor, batch_size: int, incremental: bool, n_full: int) -> Tensor:
        """Scores of the clips ``k``: ``k[:n_full]`` in batches of ``batch_size``, the rest in one."""
        ys: list[Tensor] = []
        start_clip = self.clip if self.mode == "deletion" else self.base  # step 0
        with (
            torch.inference_mode(),
            _incremental(self.clf, start_clip, "previous_step", enabled=incremental, follow=True),
        ):
            starts = [*range(0, n_full, batch_size), n_full, k.numel()]
            for a, b in itertools.pairwise(starts):
                if b > a:
                    batch = self.batch(k[a:b].view(-1, 1, 1, 1))
                    ys.append(_score(self.clf(batch), self.target, self.behavior).double().cpu())
        return torch.cat(ys)

    def evaluate(self, k: Tensor, batch_size: int, incremental: bool) -> tuple[Tensor, float, int]:
        """The scores after each step, the score of the clean clip and the forward passes they took."""
        n0 = self.clf.n_forward
        y = self.scores(k, batch_size, incremental)
        with torch.inference_mode():
            full = float(_score(self.clf(self.clip[None]), self.target, self.behavior)[0])
        return y, full, self.clf.n_forward - n0


def perturbation_curve(
    model: Any,
    video: Tensor,
    importance: Tensor,
    target: int,
    *,
    mode: Mode = "deletion",
    order: Order = "morf",
    unit: Unit = "pixel",
    steps: int | Literal["all"] = 128,
    levels: int = 0,
    aggregate: Aggregate = "mean",
    fill: Substrate = "black",
    fill_value: Sequence[float] | None = None,
    blur_sigma: float = 10.0,
    patch: int = 7,
    superpixels: int = 256,
    labels: Tensor | None = None,
    behavior: str = "probability",
    batch_size: int = 16,
    seed: int = 0,
    incremental: bool = True,
) -> Curve:
    """Insertion or deletion curve of ``importance`` (higher = more important).

    The settings are explicit here; :func:`removalx.metrics.presets.preset_settings` gives a
    paper's set (``perturbation_curve(..., **preset_settings("step", "insertion"))`` after
    dropping ``auc``).

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
    unit : {"pixel", "patch", "superpixel", "supervoxel", "level"}
        Ranking unit (:mod:`removalx.metrics.units`).
    steps : int or "all"
        Number of steps ``L`` (the papers use 28 and 128); ``"all"``: one unit per step (at
        most :data:`MAX_ALL_STEPS` units, else a :class:`ConfigError`). The
        curve has ``L + 1`` points; step ``l`` perturbs the first ``floor(l * n_units / L)``
        units; steps that repeat a clip (``L > n_units``) are scored once (``_StepRun.scores``).
    levels : int
        Bins of the ``level`` unit (0 = every distinct value).
    aggregate : {"mean", "sum"}
        A unit's score: mean or sum of its pixels' importance (the same order for equal-size
        units; the STEP authors' code sums over superpixels).
    fill : {"black", "blur", "gray", "mean", "dataset_mean"}
        Substrate (see :func:`substrate`).
    fill_value : sequence of float, optional
        Colour of ``dataset_mean``; default: the model's normalisation ``mean`` if it has one.
    labels : Tensor, optional
        ``long[T, H, W]`` precomputed units (overrides ``unit``'s own segmentation).
    behavior : {"probability", "logit"}
        What is recorded: softmax probability (default, as in all the papers) or logit.
    batch_size : int
        Perturbed clips per forward pass (run on the model's device under ``inference_mode``).
    seed : int
        Seed of the tie-breaking permutation.
    incremental : bool
        Evaluate each step by incremental inference from the previous step (the same
        outputs as full forward passes, docs/incremental.md); ``False``: full passes.

    Returns
    -------
    Curve
        ``x`` = fraction of pixels perturbed (exact, also for units of unequal size).
    """
    clf: VideoClassifier = as_classifier(model)
    _check_curve_settings(video, importance, mode, order, steps)
    if labels is None:
        labels = unit_labels(
            video, unit, importance=importance, patch=patch, superpixels=superpixels, levels=levels
        )
    device = clf.device
    value, source = _fill_value(clf, fill, fill_value)
    plan = _plan_steps(importance, labels, order, seed, aggregate, steps)
    clip = video.to(device, torch.float32)
    base = substrate(clip, fill, blur_sigma, value)
    run = _StepRun(clf, clip, base, plan.rank.to(device).view(1, *video.shape[:3]), mode, target, behavior)
    y, full, n_forward = run.evaluate(plan.k.to(device), batch_size, incremental)
    meta = {
        "n_units": plan.n_units,
        "n_forward": n_forward,
        "target": int(target),
        "full": full,
        "steps": plan.n_steps,
        **_fill_meta(fill, value, source),
        "behavior": behavior,
    }
    return Curve(x=plan.x, y=y, mode=mode, order=order, unit=unit, meta=meta)


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


ThresholdKind = Literal["share", "target"]


def minimal_mask(
    curve: Curve,
    thresholds: Sequence[float],
    relative: bool = True,
    *,
    kind: ThresholdKind = "share",
    interpolate: bool = True,
) -> dict[float, float]:
    """Smallest fraction of pixels that keeps / destroys the prediction (Sec. 4.6.1).

    Parameters
    ----------
    curve : Curve
        An insertion or a deletion curve.
    thresholds : sequence of float
        The thresholds ``t``.
    relative : bool
        Scale the levels by the clean-clip score ``ref`` (else ``ref = 1``).
    kind : {"share", "target"}
        ``share``: ``t`` is the share of the prediction kept (insertion: ``y >= t * ref``) or
        destroyed (deletion: ``y <= (1 - t) * ref``). ``target``: ``t`` is the target
        prediction itself (insertion: ``y >= t * ref``, deletion: ``y <= t * ref``), as in the
        released evaluator of "removal-based video explanations" (with ``relative=False``).
    interpolate : bool
        Interpolate the crossing linearly between curve points; ``False``: the smallest
        perturbed fraction among the curve's points that reaches the level (the released
        evaluator's reading).

    Returns
    -------
    dict
        ``{threshold: fraction in [0, 1]}``; 1.0 when the level is never reached.
    """
    if kind not in ("share", "target"):
        raise ConfigError(f"Unknown threshold kind {str(kind)[:40]!r}.", "Use 'share' or 'target'.")
    ref = float(curve.meta.get("full", 1.0)) if relative else 1.0
    x, y = curve.x.double(), curve.y.double()
    out: dict[float, float] = {}
    for t in thresholds:
        if curve.mode == "insertion":
            level = t * ref
            ok = y >= level
        else:
            level = (t if kind == "target" else 1.0 - t) * ref
            ok = y <= level
        idx = torch.nonzero(ok)
        if idx.numel() == 0:
            out[float(t)] = 1.0
            continue
        i = int(idx[0])
        if i == 0 or not interpolate:
            out[float(t)] = float(x[i])
            continue
        y0, y1, x0, x1 = float(y[i - 1]), float(y[i]), float(x[i - 1]), float(x[i])
        frac = 1.0 if y1 == y0 else min(1.0, max(0.0, (level - y0) / (y1 - y0)))
        out[float(t)] = x0 + frac * (x1 - x0)
    return out
