"""Localisation metrics against ground truth: spatial and temporal pointing games.

ECCV-W video attribution study, Sec. 4 "Evaluation Metrics": the *spatial* pointing game
(S-PT) records a hit when a circle of 7 pixels around the maximum point of the importance
map intersects the ground-truth region; the *temporal* pointing game (T-PT) records a hit
when the frame with the highest importance lies in the ground-truth segment. For videos
the spatial game is played in every frame that contains ground truth. The study (and the
adaptive occlusion paper, Sec. 4.2: "the hit rate in the entire dataset") pools the frames
of all clips: :func:`pooled_hit_rate` combines per-clip results that way (``frames``), as a
mean of per-clip hit rates (``clip``), or as the mean of per-class pooled rates (``class``,
what the STEP authors' released pointing-game code reports).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

import torch
from torch import Tensor

from removalx.errors import ConfigError

__all__ = ["Pooling", "bounding_boxes", "pooled_hit_rate", "spatial_pointing", "temporal_pointing"]

Pooling = Literal["frames", "clip", "class"]


def bounding_boxes(mask: Tensor) -> Tensor:
    """Replace the region of every frame of ``bool[T, H, W]`` by its bounding box."""
    out = torch.zeros_like(mask, dtype=torch.bool)
    for t in range(mask.shape[0]):
        ys, xs = torch.nonzero(mask[t], as_tuple=True)
        if ys.numel():
            out[t, int(ys.min()) : int(ys.max()) + 1, int(xs.min()) : int(xs.max()) + 1] = True
    return out


def _check(importance: Tensor, evidence: Tensor) -> None:
    if tuple(evidence.shape) != tuple(importance.shape):
        raise ConfigError(
            f"Ground-truth evidence has shape {tuple(evidence.shape)}, the attribution {tuple(importance.shape)}; "
            "expected bool[T, H, W] of the attribution's shape.",
            "Pass evidence=clip.evidence of the clip that was explained.",
        )


def spatial_pointing(
    importance: Tensor, evidence: Tensor, tolerance: float = 7.0, use_boxes: bool = False
) -> dict[str, Any]:
    """Spatial pointing game (S-PT) over the frames that contain ground truth.

    Parameters
    ----------
    importance : Tensor
        ``float[T, H, W]``, higher = more important.
    evidence : Tensor
        ``bool[T, H, W]`` ground-truth region per frame.
    tolerance : float
        Radius in pixels around each frame's maximum point (7 in the ECCV-W study).
    use_boxes : bool
        Compare against each frame's bounding box of ``evidence`` (as with box annotations).

    Returns
    -------
    dict
        ``value`` = the clip's hit rate (NaN when no frame has ground truth), ``hits``,
        ``n_frames`` (frames with ground truth), ``per_frame`` (1 hit / 0 miss / -1 no ground
        truth): pool them over a dataset with :func:`pooled_hit_rate`.
    """
    ev = evidence.bool().cpu()
    _check(importance, ev)
    if use_boxes:
        ev = bounding_boxes(ev)
    imp = importance.detach().float().cpu()
    t_, _h, w = imp.shape
    per_frame: list[int] = []
    for t in range(t_):
        if not bool(ev[t].any()):
            per_frame.append(-1)
            continue
        i = int(torch.argmax(imp[t]))
        py, px = divmod(i, w)
        ys, xs = torch.nonzero(ev[t], as_tuple=True)
        d2 = (ys.double() - py) ** 2 + (xs.double() - px) ** 2
        per_frame.append(int(float(d2.min()) <= tolerance**2))
    hits = sum(1 for v in per_frame if v == 1)
    n = sum(1 for v in per_frame if v >= 0)
    return {"value": hits / n if n else float("nan"), "hits": hits, "n_frames": n, "per_frame": per_frame}


def temporal_pointing(
    importance: Tensor,
    evidence_frames: list[int] | Tensor,
    frame_score: Literal["mean", "max", "sum"] = "mean",
) -> dict[str, Any]:
    """Temporal pointing game (T-PT): is the most important frame a ground-truth frame?

    ``frame_score`` reduces each frame's map to one number before the argmax. The study says
    "the index of the frame with the highest importance value" without defining a frame's
    value: ``max`` (the frame holding the map's highest pixel) is one reading; the STEP
    authors' released temporal-grounding code sums each frame's map, which ranks frames as
    ``mean`` (the default) and ``sum`` do.

    Returns
    -------
    dict
        ``value`` = 1.0 hit / 0.0 miss, or NaN when ``evidence_frames`` is empty (a clip without
        ground truth has no score; docs/experiments.md, the statistics skip NaN), ``frame``
        (argmax), ``frame_scores``, ``n_evidence_frames``.
    """
    imp = importance.detach().float().cpu()
    frames = [
        int(f) for f in (evidence_frames.tolist() if isinstance(evidence_frames, Tensor) else evidence_frames)
    ]
    if frame_score == "mean":
        s = imp.mean(dim=(1, 2))
    elif frame_score == "max":
        s = imp.amax(dim=(1, 2))
    elif frame_score == "sum":
        s = imp.sum(dim=(1, 2))
    else:
        raise ConfigError(f"Unknown frame_score {frame_score!r}.", "Use 'mean', 'max' or 'sum'.")
    best = int(torch.argmax(s))
    return {
        "value": float(best in set(frames)) if frames else float("nan"),
        "frame": best,
        "frame_scores": [round(float(v), 6) for v in s],
        "n_evidence_frames": len(frames),
    }


def pooled_hit_rate(
    results: Iterable[Mapping[str, Any]], pooling: Pooling = "frames", labels: Iterable[Any] | None = None
) -> float:
    """Combine per-clip :func:`spatial_pointing` results into one dataset score.

    Parameters
    ----------
    results : iterable of dict
        Per-clip results with ``hits`` and ``n_frames`` (and ``value``).
    pooling : {"frames", "clip", "class"}
        ``frames``: all frames of all clips pooled, ``sum(hits) / sum(n_frames)`` (the ECCV-W
        study; the adaptive occlusion paper's "hit rate in the entire dataset"). ``clip``: the
        mean of the per-clip hit rates. ``class``: frames pooled within each class, then the
        mean over classes (the STEP authors' released code; needs ``labels`` or a ``label`` in
        every result).
    labels : iterable, optional
        The class of every result (``class`` pooling).

    Returns
    -------
    float
        NaN when no frame has ground truth.

    Examples
    --------
    >>> r = [{"hits": 1, "n_frames": 1, "value": 1.0}, {"hits": 1, "n_frames": 3, "value": 1 / 3}]
    >>> pooled_hit_rate(r), round(pooled_hit_rate(r, "clip"), 4)
    (0.5, 0.6667)
    """
    rows = list(results)
    if pooling == "frames":
        n = sum(int(r["n_frames"]) for r in rows)
        return sum(int(r["hits"]) for r in rows) / n if n else float("nan")
    if pooling == "clip":
        vals = [float(r["hits"]) / int(r["n_frames"]) for r in rows if int(r["n_frames"]) > 0]
        return sum(vals) / len(vals) if vals else float("nan")
    if pooling == "class":
        labs = list(labels) if labels is not None else [r.get("label") for r in rows]
        if len(labs) != len(rows) or any(lab is None for lab in labs):
            raise ConfigError(
                "class pooling needs the class of every clip.",
                "Pass labels=[...] (one per result) or results that carry 'label'.",
            )
        hits: dict[Any, int] = {}
        total: dict[Any, int] = {}
        for r, lab in zip(rows, labs):
            hits[lab] = hits.get(lab, 0) + int(r["hits"])
            total[lab] = total.get(lab, 0) + int(r["n_frames"])
        rates = [hits[c] / total[c] for c in total if total[c] > 0]
        return sum(rates) / len(rates) if rates else float("nan")
    raise ConfigError(f"Unknown pooling {str(pooling)[:40]!r}.", "Use 'frames', 'clip' or 'class'.")
