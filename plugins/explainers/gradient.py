"""``gradient``: vanilla gradient / saliency (STEP journal, Sec. V-B, Eq. 22).

``G(X) = dPhi_c(X) / dX``, computed with Captum's ``Saliency`` (``abs=False``) through
:class:`removalx.gradients.CaptumForward`, then reduced over channels
(:func:`removalx.gradients.reduce_channels`). One forward and one backward pass.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from captum.attr import Saliency
from torch import Tensor

from removalx.gradients import CaptumForward, GradientConfig, finish, reduce_channels, require_differentiable
from removalx.hookspecs import hookimpl
from removalx.stages import Explainer
from removalx.types import Attribution

if TYPE_CHECKING:
    from removalx.models import VideoClassifier


class GradientExplainerConfig(GradientConfig):
    """Eq. 22 has no constants; see :class:`removalx.gradients.GradientConfig`."""


class Gradient(Explainer):
    """Gradient of the target score w.r.t. the input pixels (Eq. 22)."""

    def __init__(self, config: GradientExplainerConfig) -> None:
        self.config = config

    def explain(
        self, model: VideoClassifier, video: Tensor, target: int, generator: torch.Generator
    ) -> Attribution:
        require_differentiable(model, "gradient")
        n0 = (model.n_forward, model.n_backward)
        fwd = CaptumForward(model, self.config.output)
        x = video[None].to(model.device).clone().requires_grad_(True)
        grad = Saliency(fwd).attribute(x, target=target, abs=False)
        values = reduce_channels(grad[0].detach(), self.config.channel_reduction)
        return finish(values, target, self.config, "gradient", model, n0)


@hookimpl
def removalx_register_explainers(registry):  # type: ignore[no-untyped-def]
    registry.add("gradient", GradientExplainerConfig, Gradient)
