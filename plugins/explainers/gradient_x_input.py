"""``gradient_x_input``: Gradient x Input (STEP journal, Sec. V-B, Eq. 23).

``G*I(X) = X (.) dPhi_c(X) / dX``, reduced over channels. With ``input_space="pixel"``
``X`` is the clip in [0, 1] (the implicit baseline is black); with ``"model"`` it is the
model's normalised input ``(X - mean) / std`` and the gradient is taken with respect to it,
which in pixel units is ``(X - mean) (.) dPhi_c / dX`` -- what the STEP authors' code
computes (their ``gradients(..., multiply_input=True)`` on normalised clips). One forward and
one backward pass.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from pydantic import Field
from torch import Tensor

from removalx.gradients import (
    InputMapConfig,
    InputSpace,
    finish_map,
    model_space,
    reduce_channels,
    require_differentiable,
)
from removalx.hookspecs import hookimpl
from removalx.stages import Explainer
from removalx.types import Attribution
from removalx_plugins.explainers.gradient import INPUT_SPACE_HELP, input_gradient

if TYPE_CHECKING:
    from removalx.models import VideoClassifier


class GradientXInputConfig(InputMapConfig):
    """Eq. 23 has no constants; see :class:`removalx.gradients.InputMapConfig`."""

    input_space: InputSpace = Field("pixel", description=INPUT_SPACE_HELP)


class GradientXInput(Explainer):
    """Input times gradient (Eq. 23)."""

    def __init__(self, config: GradientXInputConfig) -> None:
        self.config = config

    def explain(
        self, model: VideoClassifier, video: Tensor, target: int, generator: torch.Generator
    ) -> Attribution:
        require_differentiable(model, "gradient_x_input")
        cfg = self.config
        n0 = (model.n_forward, model.n_backward)
        x = video.to(model.device, torch.float32)
        if cfg.input_space == "pixel":
            attr = x * input_gradient(model, video, target, cfg.output, "pixel")
        else:  # x_n * dPhi/dx_n = ((x - mean) / std) * (std * dPhi/dx)
            mean, std = model_space(model, x)
            attr = ((x - mean) / std) * input_gradient(model, video, target, cfg.output, "model")
        values = reduce_channels(attr, cfg.channel_reduction)
        return finish_map(values, target, cfg, "gradient_x_input", model, n0, input_space=cfg.input_space)


@hookimpl
def removalx_register_explainers(registry):  # type: ignore[no-untyped-def]
    registry.add("gradient_x_input", GradientXInputConfig, GradientXInput)
