"""``excitation_backprop``: Excitation Backprop (Zhang et al., IJCV 2018; STEP journal Sec. V-B).

Marginal winning probabilities (MWP) are propagated top-down from a one-hot ``P`` at the target
output: each neuron passes its MWP to the neurons below it in proportion to their excitatory
input ``a_i w_ij^+`` (Zhang et al. Sec. 3, Eq. 5-7; :mod:`removalx_plugins.machinery.excitation`). The map is the
MWP of a layer's output neurons summed over channels, upsampled to the clip like Grad-CAM.

Defaults: the layer is the one ``grad_cam`` defaults to, the last spatio-temporal activation on
the path into the global pooling in execution order (the last residual stage or block, a
CNN-RNN's frame CNN; :mod:`removalx_plugins.machinery.target_layer`), removalx's reading of the
STEP journal's "last 3D convolutional layer" (Sec. V-B) and the ECCV-W study's conv5 of VGG16;
an element-wise sum splits the MWP in proportion to the positive parts of its operands
(``residual="proportional"``); ``upsample="trilinear"``. ``contrastive_eb`` and ``eb_r`` are
the same explainer with ``contrastive`` / ``recurrent`` switched on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import torch
from pydantic import Field
from torch import Tensor, nn

from removalx.plugin import Attribution, ConfigError, Explainer, PluginConfig, hookimpl
from removalx_plugins.explainers.grad_cam import (
    Upsample,
    layer_field,
    resolve_layer,
    upsample_field,
    upsample_map,
)
from removalx_plugins.machinery.excitation import Excitation
from removalx_plugins.machinery.gradients import finish, require_differentiable

if TYPE_CHECKING:
    from removalx.plugin import VideoClassifier


class ExcitationConfig(PluginConfig):
    """Excitation Backprop settings (Zhang et al. IJCV 2018)."""

    layer: str | None = layer_field("the module whose output MWP is read,")
    residual: Literal["proportional", "first"] = Field(
        "proportional",
        description="element-wise sum a + b: split the MWP by a+ : b+ (EB rule), or all to a (the residual "
        "branch in torchvision ResNets; Zhang et al.'s Caffe code)",
    )
    upsample: Upsample = upsample_field()
    contrastive: bool = Field(False, description="subtract the MWP map of the dual (negated) classifier")
    relu: bool = Field(False, description="keep only the positive part of the map")
    recurrent: bool = Field(
        True,
        description="carry the MWP through a one-layer nn.GRU with the EB-R rule; false refuses recurrent "
        "layers (Zhang et al.'s EB has no rule for them)",
    )


def channel_map(p: Tensor, layer: str, method: str) -> Tensor:
    """``[1, C, T', H', W']`` or frame-wise ``[B*T', C, H', W']`` MWP -> ``[T', H', W']`` (sum over C)."""
    if p.dim() == 5 and p.shape[0] == 1:
        return p[0].sum(0)
    if p.dim() == 4:
        return p.sum(1)
    raise ConfigError(
        f"{method}: layer {layer[:100]!r} gave {tuple(p.shape)}; expected one [B, C, T', H', W'] output, "
        "or [B*T', C, H', W'] from a 2D layer run on the frames.",
        "Choose a convolution layer or block (explainer.layer).",
    )


class ExcitationBackprop(Explainer):
    """EB / contrastive EB / EB-R map at one layer, upsampled to ``T x H x W``."""

    method = "excitation_backprop"

    def __init__(self, config: ExcitationConfig) -> None:
        self.config = config

    def explain(
        self, model: VideoClassifier, video: Tensor, target: int, generator: torch.Generator
    ) -> Attribution:
        cfg = self.config
        require_differentiable(model, self.method)
        n0 = (model.n_forward, model.n_backward)
        name = resolve_layer(model, cfg.layer, self.method, video)
        module = model.module
        assert isinstance(module, nn.Module)
        eb = Excitation(module, name, recurrent=cfg.recurrent, residual=cfg.residual)
        x = video[None].to(model.device, torch.float32)
        eb.forward(lambda: model(x))
        p = eb.mwp(target)
        model.n_backward += 1
        mwp_target = float(p.sum())
        mwp_dual = None
        if cfg.contrastive:
            dual = eb.mwp(target, dual=True)
            model.n_backward += 1
            mwp_dual = float(dual.sum())
            p = p - dual
        cam = channel_map(p.detach().float(), name, self.method)
        if cfg.relu:
            cam = cam.clamp_min(0)
        size = (int(video.shape[0]), int(video.shape[1]), int(video.shape[2]))
        up = upsample_map(cam, size, cfg.upsample)
        meta = {
            "layer": name,
            "layer_shape": tuple(int(s) for s in cam.shape),
            "layer_map": cam.cpu(),
            "mwp_total": mwp_target,
            "mwp_dual_total": mwp_dual,
            "contrastive": cfg.contrastive,
            "recurrent": cfg.recurrent,
            "residual": cfg.residual,
            "upsample": cfg.upsample,
            "layers_met": dict(eb.state.met),
        }
        return finish(up, target, None, self.method, model, n0, **meta)


def register_hook(
    name: str, config: type[ExcitationConfig], explainer: type[ExcitationBackprop]
) -> Callable[[Any], None]:
    """The ``removalx_register_explainers`` hook of a module that registers one EB variant."""

    @hookimpl
    def removalx_register_explainers(registry: Any) -> None:
        registry.add(name, config, explainer)

    return removalx_register_explainers


removalx_register_explainers = register_hook("excitation_backprop", ExcitationConfig, ExcitationBackprop)
