"""``gradient_x_input``: Gradient x Input (STEP journal, Sec. V-B, Eq. 23).

``G*I(X) = X (.) dPhi_c(X) / dX`` with Captum's ``InputXGradient``, reduced over channels.
Pixel space is [0, 1], so the implicit baseline is black. One forward and one backward pass.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from captum.attr import InputXGradient
from torch import Tensor

from removalx.gradients import CaptumForward, GradientConfig, finish, reduce_channels, require_differentiable
from removalx.hookspecs import hookimpl
from removalx.stages import Explainer
from removalx.types import Attribution

if TYPE_CHECKING:
    from removalx.models import VideoClassifier


class GradientXInputConfig(GradientConfig):
    """Eq. 23 has no constants; see :class:`removalx.gradients.GradientConfig`."""


class GradientXInput(Explainer):
    """Input times gradient (Eq. 23)."""

    def __init__(self, config: GradientXInputConfig) -> None:
        self.config = config

    def explain(
        self, model: VideoClassifier, video: Tensor, target: int, generator: torch.Generator
    ) -> Attribution:
        require_differentiable(model, "gradient_x_input")
        n0 = (model.n_forward, model.n_backward)
        fwd = CaptumForward(model, self.config.output)
        x = video[None].to(model.device).clone().requires_grad_(True)
        attr = InputXGradient(fwd).attribute(x, target=target)
        values = reduce_channels(attr[0].detach(), self.config.channel_reduction)
        return finish(values, target, self.config, "gradient_x_input", model, n0)


@hookimpl
def removalx_register_explainers(registry):  # type: ignore[no-untyped-def]
    registry.add("gradient_x_input", GradientXInputConfig, GradientXInput)
