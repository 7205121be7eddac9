"""``grad_cam``: 3D Grad-CAM (STEP journal, Sec. V-B, Eq. 28).

``GC(X) = ReLU(sum_k alpha_k A_k)`` on a 3D convolution layer, ``alpha_k`` the mean gradient
of the target over the activation's positions (Captum's ``LayerGradCam`` averages over all
of ``T' x H' x W'``), then trilinear upsampling to the clip's ``T x H x W`` as the journal
does for R(2+1)D ("the last 3D convolutional layer", up-sampled in space and time).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from captum.attr import LayerGradCam
from pydantic import Field
from torch import Tensor, nn

from removalx.errors import ConfigError, ModelError
from removalx.gradients import CaptumForward, GradientConfig, finish, require_differentiable
from removalx.hookspecs import hookimpl
from removalx.stages import Explainer
from removalx.types import Attribution

if TYPE_CHECKING:
    from removalx.models import VideoClassifier


class GradCAMConfig(GradientConfig):
    """Grad-CAM settings (Eq. 28). ``channel_reduction`` does not apply (one map per layer)."""

    layer: str | None = Field(
        None, description="dotted name of a Conv3d in the model (default: the last Conv3d, as the journal)"
    )
    relu: bool = Field(True, description="the ReLU of Eq. 28")


def conv3d_layers(module: nn.Module) -> list[str]:
    """Dotted names of every ``nn.Conv3d`` in ``module``, in registration order."""
    return [name for name, m in module.named_modules() if isinstance(m, nn.Conv3d)]


class GradCAM(Explainer):
    """Grad-CAM on a 3D conv layer, upsampled trilinearly to ``T x H x W`` (Eq. 28)."""

    def __init__(self, config: GradCAMConfig) -> None:
        self.config = config

    def resolve_layer(self, model: VideoClassifier) -> tuple[str, nn.Module]:
        module = model.module
        names = conv3d_layers(module)  # type: ignore[arg-type]
        if not names:
            raise ModelError(
                f"grad_cam needs a 3D convolution layer, but {model.name!r} has no nn.Conv3d.",
                "Use a 3D CNN, or a method that needs no layer (gradient, integrated_gradients, step).",
            )
        name = self.config.layer or names[-1]
        modules = dict(module.named_modules())  # type: ignore[union-attr]
        if name not in modules or not isinstance(modules[name], nn.Conv3d):
            shown = ", ".join(names[:50]) + (" ..." if len(names) > 50 else "")
            raise ConfigError(
                f"grad_cam: layer {name!r} is not a Conv3d of model {model.name!r}; its 3D conv "
                f"layers are: {shown}.",
                f"Set explainer.layer to one of them (default: the last, {names[-1]!r}).",
            )
        return name, modules[name]

    def explain(
        self, model: VideoClassifier, video: Tensor, target: int, generator: torch.Generator
    ) -> Attribution:
        require_differentiable(model, "grad_cam")
        n0 = (model.n_forward, model.n_backward)
        name, layer = self.resolve_layer(model)
        fwd = CaptumForward(model, self.config.output)
        x = video[None].to(model.device)
        cam = LayerGradCam(fwd, layer).attribute(x, target=target, relu_attributions=self.config.relu)
        cam = cam.detach()
        if cam.dim() != 5:
            raise ModelError(
                f"grad_cam: layer {name!r} returned an activation of shape {tuple(cam.shape)}; "
                "expected [B, C, T', H', W'].",
                "Choose a Conv3d whose output keeps the time axis (BCTHW models).",
            )
        low = tuple(int(s) for s in cam.shape[2:])
        t, h, w = (int(s) for s in video.shape[:3])
        up = F.interpolate(cam.float(), size=(t, h, w), mode="trilinear", align_corners=False)[0, 0]
        meta = {"layer": name, "layer_shape": low}
        return finish(up, target, self.config, "grad_cam", model, n0, **meta)


@hookimpl
def removalx_register_explainers(registry):  # type: ignore[no-untyped-def]
    registry.add("grad_cam", GradCAMConfig, GradCAM)
