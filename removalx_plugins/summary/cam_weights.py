"""``cam_weights``: channel weights from removal outputs, and the class activation map they give.

The summary of the removal-based CAMs: each feature is a channel ``k`` of a layer
(:mod:`removalx_plugins.segmentation.activation_maps`), its weight ``w_k`` is read from the
outputs of the samples that keep or remove it, and the map is ``ReLU(sum_k w_k A_k)`` at the
layer's resolution, upsampled to the clip (the space's ``cam``; ``ReLU(expand(w))`` for
other spaces).

``weights``:

* ``score``: ``w_k`` = mean output of the samples that keep ``k`` (with ``only_one``: the
  output of ``X (.) H_k``). Score-CAM's released code and its Eq. 5 with the softmax score
  (Wang et al., Sec. 3.2);
* ``score_minus_empty``: the same minus the output of the empty clip, Score-CAM's
  ``C(A_k) = f(X (.) H_k) - f(X_b)`` (Eq. 3) with the removal's fill as the baseline ``X_b``;
* ``softmax``: the softmax over channels of the ``score`` weights (pytorch-grad-cam's
  ``ScoreCAM``);
* ``relative_drop``: ``w_k = (y - y_k) / y`` with ``y`` the output of the full clip and
  ``y_k`` the mean output of the samples that remove ``k`` (with ``leave_one_out``: channel
  ``k`` ablated), Ablation-CAM's Eq. 3 (Desai & Ramaswamy, Sec. 3); where ``y`` is exactly 0
  Eq. 3 is undefined and the weights are the plain drops ``y - y_k``.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import Tensor

from removalx.plugin import ChunkedPlan, FeatureSpace, PluginConfig, Summary, hookimpl

Weights = Literal["score", "score_minus_empty", "softmax", "relative_drop"]
_BASE: dict[str, tuple[str, ...]] = {"score_minus_empty": ("empty",), "relative_drop": ("full",)}


class CamWeightsConfig(PluginConfig):
    """How the channel weights are read from the outputs, and the final ReLU."""

    weights: Weights = Field(
        "score",
        description="score (Score-CAM), score_minus_empty (Score-CAM Eq. 3 with the baseline), softmax "
        "over channels (pytorch-grad-cam ScoreCAM) or relative_drop (Ablation-CAM Eq. 3)",
    )
    relu: bool = Field(True, description="the ReLU of the CAM, applied at the layer's resolution")


class CamWeights(Summary):
    """``w_k`` from the outputs (``weights``), map ``ReLU(sum_k w_k A_k)``; ``feature_values`` = ``w``."""

    def __init__(self, config: CamWeightsConfig) -> None:
        self.config = config
        self.requires = _BASE.get(config.weights, ())  # type: ignore[misc]

    def begin(self, space: FeatureSpace, plan: ChunkedPlan, base: dict[str, float]) -> None:
        self.base = dict(base)
        self.acc = torch.zeros(space.n_features, dtype=torch.float64)
        self.cnt = torch.zeros(space.n_features, dtype=torch.float64)

    def update(self, z: Tensor, keep: Tensor | None, y: Tensor, weights: Tensor | None) -> None:
        dev = y.device if y.device.type == "cuda" else torch.device("cpu")
        z = z.to(dev, torch.float64)
        sel = 1.0 - z if self.config.weights == "relative_drop" else z
        self.acc, self.cnt = self.acc.to(dev), self.cnt.to(dev)
        self.acc += sel.T @ y.to(dev, torch.float64)
        self.cnt += sel.sum(0)

    def channel_weights(self) -> Tensor:
        """``w`` (float64, CPU) from the accumulated outputs."""
        acc, cnt = self.acc.cpu(), self.cnt.cpu()
        mean = torch.where(cnt > 0, acc / cnt.clamp_min(1e-12), torch.zeros_like(acc))
        how = self.config.weights
        if how == "score_minus_empty":
            return torch.where(cnt > 0, mean - self.base["empty"], torch.zeros_like(mean))
        if how == "softmax":
            return torch.softmax(mean, 0)
        if how == "relative_drop":
            full = self.base["full"]
            scale = full if float(full) != 0.0 else 1.0  # y = 0: Eq. 3 is undefined, keep the plain drop
            return torch.where(cnt > 0, (full - mean) / scale, torch.zeros_like(mean))
        return mean

    def finalize(self, space: FeatureSpace) -> tuple[Tensor, Tensor]:
        w = self.channel_weights().float()
        cam = getattr(space, "cam", None)
        if callable(cam):
            values = cam(w, relu=self.config.relu)
        else:
            values = space.expand(w)
            values = values.clamp_min(0) if self.config.relu else values
        return values.float().cpu(), w


@hookimpl
def removalx_register_summaries(registry):  # type: ignore[no-untyped-def]
    registry.add("cam_weights", CamWeightsConfig, CamWeights)
