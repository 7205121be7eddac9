"""The saliency metric SM (ECCV-W video attribution study, Sec. 3.3, Eq. 6).

``SM = log(max(a, tau)) - log(p_c)`` where ``a`` is the area fraction of the binarised
importance map (the map min-max normalised to [0, 1] and thresholded at 0.5 or 0.75 -- the
study's S50 and S75), ``tau = 0.05`` guards against tiny areas, and ``p_c`` is the target
probability of the clip with only the salient region kept (the rest replaced by a
substrate). Lower is better: a small region that alone keeps the prediction. Unlike the
original image metric the study uses the region itself, not its tightest box.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from removalx.metrics.perturbation import Substrate, substrate
from removalx.models import as_classifier

__all__ = ["saliency_metric"]


def saliency_metric(
    model: Any,
    video: Tensor,
    importance: Tensor,
    target: int,
    *,
    threshold: float = 0.5,
    tau: float = 0.05,
    fill: Substrate = "black",
    blur_sigma: float = 10.0,
) -> dict[str, Any]:
    """SM of ECCV-W Eq. 6 for one clip.

    Returns
    -------
    dict
        ``value`` (SM), ``area`` (``a``), ``p`` (``p_c``), ``n_forward`` (1).
    """
    clf = as_classifier(model)
    imp = importance.detach().double().cpu()
    lo, hi = float(imp.min()), float(imp.max())
    norm = (imp - lo) / (hi - lo) if hi > lo else torch.ones_like(imp)
    mask = (norm >= threshold).float()
    a = float(mask.mean())
    clip = video.to(clf.device, torch.float32)
    keep = mask.to(clf.device, torch.float32).unsqueeze(-1)
    with torch.inference_mode():
        x = torch.lerp(substrate(clip, fill, blur_sigma), clip, keep)
        p = float(torch.softmax(clf(x[None]).float(), dim=-1)[0, target])
    sm = math.log(max(a, tau)) - math.log(max(p, 1e-12))
    return {"value": sm, "area": a, "p": p, "n_forward": 1}
