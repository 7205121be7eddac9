"""``gradient_x_input``: Gradient x Input (STEP journal, Sec. V-B, Eq. 23).

``G*I(X) = X (.) dPhi_c(X) / dX``, reduced over channels. With ``input_space="pixel"``
``X`` is the clip in [0, 1] (the implicit baseline is black); with ``"model"`` it is the
model's normalised input ``(X - mean) / std`` and the gradient is taken with respect to it,
which in pixel units is ``(X - mean) (.) dPhi_c / dX`` -- what the STEP authors' code
computes (their ``gradients(..., multiply_input=True)`` on normalised clips). One forward and
one backward pass.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from removalx.plugin import hookimpl
from removalx_plugins.explainers.gradient import GradientExplainerConfig, input_gradient
from removalx_plugins.machinery.gradients import InputMapExplainer, model_space, reduce_channels

if TYPE_CHECKING:
    from removalx.plugin import VideoClassifier


class GradientXInputConfig(GradientExplainerConfig):
    """Eq. 23 has no constants; see :class:`removalx_plugins.machinery.gradients.InputMapConfig`."""


class GradientXInput(InputMapExplainer[GradientXInputConfig]):
    """Input times gradient (Eq. 23)."""

    name = "gradient_x_input"

    def attribute(
        self, model: VideoClassifier, video: Tensor, target: int, generator: torch.Generator
    ) -> tuple[Tensor, dict[str, Any]]:
        cfg = self.config
        x = video.to(model.device, torch.float32)
        if cfg.input_space == "pixel":
            attr = x * input_gradient(model, video, target, cfg.output, "pixel")
        else:  # x_n * dPhi/dx_n = ((x - mean) / std) * (std * dPhi/dx)
            mean, std = model_space(model, x)
            attr = ((x - mean) / std) * input_gradient(model, video, target, cfg.output, "model")
        return reduce_channels(attr, cfg.channel_reduction), {"input_space": cfg.input_space}


@hookimpl
def removalx_register_explainers(registry):  # type: ignore[no-untyped-def]
    registry.add("gradient_x_input", GradientXInputConfig, GradientXInput)
