"""``gradient``: vanilla gradient / saliency (STEP journal, Sec. V-B, Eq. 22).

``G(X) = dPhi_c(X) / dX``, computed with Captum's ``Saliency`` (``abs=False``) through
:class:`removalx_plugins.machinery.gradients.CaptumForward`, then reduced over channels
(:func:`removalx_plugins.machinery.gradients.reduce_channels`). One forward and one backward pass.

``input_space="model"`` differentiates with respect to the model's normalised input
``(X - mean) / std`` (the pixel gradient times ``std``), as the STEP authors' code does; it
equals ``"pixel"`` for a classifier without normalisation. ``normalize="percentile"`` maps
the result to [0, 1] as their code does. The ``gradient`` recipe sets both, with
``channel_reduction="abs_mean"`` (docs/explainers.md, "The journal's gradient baselines").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from captum.attr import Saliency
from pydantic import Field
from torch import Tensor

from removalx.plugin import hookimpl
from removalx_plugins.machinery.gradients import (
    INPUT_SPACE_HELP,
    CaptumForward,
    InputMapConfig,
    InputMapExplainer,
    InputSpace,
    model_space,
    reduce_channels,
)

if TYPE_CHECKING:
    from removalx.plugin import VideoClassifier


class GradientExplainerConfig(InputMapConfig):
    """Eq. 22 has no constants; see :class:`removalx_plugins.machinery.gradients.InputMapConfig`."""

    input_space: InputSpace = Field("pixel", description=INPUT_SPACE_HELP)


def input_gradient(model: VideoClassifier, video: Tensor, target: int, output: str, space: str) -> Tensor:
    """``[T, H, W, C]`` gradient of the target score w.r.t. the clip (``"pixel"``) or the model input."""
    fwd = CaptumForward(model, output)
    x = video[None].to(model.device).clone().requires_grad_(True)
    grad = Saliency(fwd).attribute(x, target=target, abs=False)[0].detach()
    if space == "model":
        grad = grad * model_space(model, grad)[1]
    return grad


class Gradient(InputMapExplainer[GradientExplainerConfig]):
    """Gradient of the target score w.r.t. the input pixels (Eq. 22)."""

    name = "gradient"

    def attribute(
        self, model: VideoClassifier, video: Tensor, target: int, generator: torch.Generator
    ) -> tuple[Tensor, dict[str, Any]]:
        cfg = self.config
        grad = input_gradient(model, video, target, cfg.output, cfg.input_space)
        return reduce_channels(grad, cfg.channel_reduction), {"input_space": cfg.input_space}


@hookimpl
def removalx_register_explainers(registry):  # type: ignore[no-untyped-def]
    registry.add("gradient", GradientExplainerConfig, Gradient)
