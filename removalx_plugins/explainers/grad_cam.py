"""``grad_cam``: Grad-CAM on a spatio-temporal layer (Selvaraju et al. ICCV 2017; STEP journal Eq. 28).

``GC(X) = ReLU(sum_k alpha_k A_k)`` with ``alpha_k`` the mean gradient of the class score
``y^c`` over the positions of the activation ``A_k`` (Selvaraju et al., Eq. 1-2: the score
*before* the softmax, gradients "global-average-pooled"). The activation is that of any layer
with a spatio-temporal output:

* ``[B, C, T', H', W']`` (a ``Conv3d`` or a 3D block), or
* ``[B*T', C, H', W']`` from a 2D layer applied frame by frame (CNN-RNN models), also when the
  layer is called once per frame -- the calls are stacked in time.

Defaults (the ``grad_cam`` recipe): the layer whose output is the last spatio-temporal
activation on the path into the global pooling, in execution order (removalx's reading of "the
last 3D convolutional layer": the last residual stage ``layer4`` of a ResNet, as in
pytorch-grad-cam; :mod:`removalx_plugins.machinery.target_layer`), the logit, ``alpha_k``
averaged over all ``T' x H' x W'`` positions, trilinear upsampling to the clip's ``T x H x W``. ``output="probability"``,
``pooling="space"`` (``alpha_{k,t}`` per frame over ``H' x W'`` only, the journal's "averaging
the gradient ... on its spatial dimension", Sec. V-B) and ``upsample="nearest_time"``
(nearest in time, bilinear in space) reproduce the STEP authors' baseline (``grad_cam_step``).

``variant`` selects how the layer's gradients weight its activations (``"gradcam"``, the
default, is the map above bit for bit):

* ``"gradcam++"`` (Chattopadhay et al., WACV 2018, Eq. 19 with the exponential of the score,
  Sec. 3.2): ``alpha_k^{pos} = g^2 / (2 g^2 + sum_{pos'} A_k g^3)`` with ``g = dS/dA_k`` at each
  position (0 where ``g = 0``), ``w_k = sum_pos alpha_k^{pos} ReLU(g)``; the sums run over the
  same positions as ``pooling`` (all ``T' x H' x W'``, or per frame).
* ``"layercam"`` (Jiang et al., TIP 2021, Eq. 4-5): ``ReLU(sum_k ReLU(g_k) * A_k)`` position by
  position (no pooling).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from removalx.plugin import Attribution, ConfigError, Explainer, ModelError, hookimpl
from removalx_plugins.machinery.gradients import (
    GradientConfig,
    Output,
    finish,
    output_of,
    require_differentiable,
)
from removalx_plugins.machinery.target_layer import default_layer

if TYPE_CHECKING:
    from removalx.plugin import VideoClassifier


Upsample = Literal["trilinear", "nearest_time"]
Variant = Literal["gradcam", "gradcam++", "layercam"]


def layer_field(reading: str) -> Any:
    """The ``layer`` option of a layer-map explainer (:func:`resolve_layer`); ``reading`` says what is read."""
    return Field(
        None,
        description=f"dotted name of {reading} [B, C, T', H', W'] or frame-wise [B*T', C, H', W'] "
        "(default: the last such activation on the path into the global pooling, in execution order: "
        "the last residual stage or block, a CNN-RNN's frame CNN)",
    )


def upsample_field(note: str = "") -> Any:
    """The ``upsample`` option of a layer-map explainer (:func:`upsample_map`), help ending in ``note``."""
    return Field(
        "trilinear", description=f"to T x H x W: trilinear, or nearest in time + bilinear in space{note}"
    )


class GradCAMConfig(GradientConfig):
    """Grad-CAM settings (Eq. 28). ``channel_reduction`` does not apply (one map per layer)."""

    output: Output = Field(
        "logit", description="differentiate the class score before the softmax (Selvaraju et al.) or Phi_c"
    )
    layer: str | None = layer_field("a module with output")
    pooling: Literal["space_time", "space"] = Field(
        "space_time",
        description="alpha_k = mean gradient over T'xH'xW' (Grad-CAM's global average pooling) or per "
        "frame over H'xW' (STEP journal Sec. V-B, the authors' code)",
    )
    upsample: Upsample = upsample_field(" (authors)")
    relu: bool = Field(True, description="the ReLU of Eq. 28")
    variant: Variant = Field(
        "gradcam",
        description="channel weights: Grad-CAM's mean gradient, Grad-CAM++'s alpha-weighted positive "
        "gradients (Chattopadhay et al. Eq. 19) or LayerCAM's element-wise ReLU(gradient) (Jiang et al. Eq. 4)",
    )


def conv_layers(module: nn.Module) -> list[str]:
    """Dotted names of every ``nn.Conv3d``, else every ``nn.Conv2d`` (listed when a ``layer`` is unknown)."""
    names = [n for n, m in module.named_modules() if isinstance(m, nn.Conv3d)]
    return names or [n for n, m in module.named_modules() if isinstance(m, nn.Conv2d)]


def grad_cam_map(
    activation: Tensor, gradient: Tensor, pooling: str = "space_time", relu: bool = True
) -> Tensor:
    """``ReLU(sum_k alpha_k A_k)`` for ``A``, ``dy/dA`` of shape ``[T', C, H', W']`` -> ``[T', H', W']``.

    ``pooling="space_time"``: ``alpha_k`` = mean of ``dy/dA_k`` over ``T', H', W'``;
    ``"space"``: ``alpha_{k,t}`` = mean over ``H', W'`` of frame ``t``.
    """
    dims = (0, 2, 3) if pooling == "space_time" else (2, 3)
    alpha = gradient.mean(dim=dims, keepdim=True)
    cam = (alpha * activation).sum(dim=1)
    return cam.clamp_min(0) if relu else cam


def grad_cam_pp_weights(activation: Tensor, gradient: Tensor, pooling: str = "space_time") -> Tensor:
    """Grad-CAM++ channel weights ``w_k`` (Chattopadhay et al., Eq. 19), broadcastable to ``A``.

    ``alpha = g^2 / (2 g^2 + S_k g^3)`` with ``S_k`` the sum of ``A_k`` over the pooled
    positions, ``alpha = 0`` where ``g = 0`` (the paper's convention for a vanishing
    denominator), and ``w_k = sum_pos alpha ReLU(g)``. Working with the gradient of the score
    ``S`` instead of ``exp(S)`` scales every ``w_k`` by the same ``exp(S) > 0`` (Sec. 3.2).
    """
    dims = (0, 2, 3) if pooling == "space_time" else (2, 3)
    g2 = gradient * gradient
    total = activation.sum(dim=dims, keepdim=True)
    denom = 2 * g2 + total * g2 * gradient
    safe = torch.where(denom != 0, denom, torch.ones_like(denom))
    alpha = torch.where((gradient != 0) & (denom != 0), g2 / safe, torch.zeros_like(g2))
    return (alpha * gradient.clamp_min(0)).sum(dim=dims, keepdim=True)


def cam_variant_map(
    activation: Tensor, gradient: Tensor, variant: str, pooling: str = "space_time", relu: bool = True
) -> Tensor:
    """The map of ``variant`` for ``A``, ``dS/dA`` of shape ``[T', C, H', W']`` -> ``[T', H', W']``."""
    if variant == "gradcam":
        return grad_cam_map(activation, gradient, pooling, relu)
    if variant == "gradcam++":
        cam = (grad_cam_pp_weights(activation, gradient, pooling) * activation).sum(dim=1)
    else:  # layercam: element-wise positive gradients
        cam = (gradient.clamp_min(0) * activation).sum(dim=1)
    return cam.clamp_min(0) if relu else cam


def upsample_map(cam: Tensor, size: tuple[int, int, int], mode: str = "trilinear") -> Tensor:
    """``[T', H', W'] -> [T, H, W]``: trilinear, or nearest in time then bilinear per frame."""
    x = cam[None, None].float()
    if mode == "trilinear":
        return F.interpolate(x, size=size, mode="trilinear", align_corners=False)[0, 0]
    t, h, w = size
    x = F.interpolate(x, size=(t, *cam.shape[1:]), mode="nearest")[0, 0]  # [T, H', W']
    return F.interpolate(x[:, None], size=(h, w), mode="bilinear", align_corners=False)[:, 0]


def resolve_layer(model: VideoClassifier, layer: str | None, method: str, video: Tensor) -> str:
    """Dotted name of ``layer``, or of the default layer on clips like ``video``; errors name ``method``.

    The default is the last spatio-temporal activation on the path into the global pooling, in
    execution order, chosen from one recorded forward pass and cached per model
    (:func:`removalx_plugins.machinery.target_layer.default_layer`): the last residual stage of
    a ResNet (``layer4``), ``features`` of S3D or of a CNN-RNN's frame CNN.
    """
    module = model.module
    assert isinstance(module, nn.Module)  # require_differentiable ran first
    if layer is None:
        chosen = default_layer(model, video).layer
        if chosen is None:
            raise ModelError(
                f"{method} needs a layer, but {model.name!r} runs no nn.Conv3d or nn.Conv2d followed by a "
                "module with a [B, C, T', H', W'] or [B*T', C, H', W'] output to default to.",
                "Set explainer.layer to a module whose output is [B, C, T', H', W'] or [B*T', C, H', W'].",
            )
        return chosen
    if layer == "" or layer not in dict(module.named_modules()):
        convs = conv_layers(module)
        shown = ", ".join(convs[:50]) + (" ..." if len(convs) > 50 else "")
        raise ConfigError(
            f"{method}: {model.name!r} has no layer {layer[:100]!r}; its conv layers are: {shown or 'none'}.",
            "Set explainer.layer to a dotted module name (print(model.module) lists them).",
        )
    return layer


class GradCAM(Explainer):
    """Grad-CAM on a spatio-temporal layer, upsampled to ``T x H x W`` (Eq. 28)."""

    def __init__(self, config: GradCAMConfig) -> None:
        self.config = config

    def resolve_layer(self, model: VideoClassifier, video: Tensor) -> tuple[str, nn.Module]:
        name = resolve_layer(model, self.config.layer, "grad_cam", video)
        assert isinstance(model.module, nn.Module)
        return name, dict(model.module.named_modules())[name]

    def activation_and_gradient(
        self, model: VideoClassifier, layer_name: str, layer: nn.Module, video: Tensor, target: int
    ) -> tuple[Tensor, Tensor]:
        """``A`` and ``dy/dA`` of the layer, both ``[T', C, H', W']`` (one clip)."""
        outputs: list[Tensor] = []

        def keep(_module: nn.Module, _inputs: object, out: object) -> None:
            if isinstance(out, Tensor):
                outputs.append(out)

        handle = layer.register_forward_hook(keep)
        try:
            with torch.enable_grad():
                x = video[None].to(model.device, torch.float32).requires_grad_(True)
                score = output_of(model(x), target, self.config.output).sum()
                dims = {o.dim() for o in outputs}
                if dims not in ({4}, {5}) or (dims == {5} and len(outputs) > 1):
                    got = ", ".join(str(tuple(o.shape)) for o in outputs[:3]) or "no tensor"
                    raise ConfigError(
                        f"grad_cam: layer {layer_name!r} gave {got}; expected one [B, C, T', H', W'] "
                        "output, or [B*T', C, H', W'] from a 2D layer run on the frames.",
                        "Choose a convolution layer or block (e.g. the last Conv3d, or a CNN-RNN's frame CNN).",
                    )
                grads = torch.autograd.grad(score, outputs, allow_unused=True)
        finally:
            handle.remove()
        model.n_backward += 1
        grads = tuple(torch.zeros_like(o) if g is None else g for o, g in zip(outputs, grads, strict=True))
        if outputs[0].dim() == 5:  # [1, C, T', H', W'] -> [T', C, H', W']
            return outputs[0][0].detach().transpose(0, 1), grads[0][0].transpose(0, 1)
        return torch.cat([o.detach() for o in outputs]), torch.cat(grads)  # frames stacked in time

    def explain(
        self, model: VideoClassifier, video: Tensor, target: int, generator: torch.Generator
    ) -> Attribution:
        require_differentiable(model, "grad_cam")
        n0 = (model.n_forward, model.n_backward)
        name, layer = self.resolve_layer(model, video)
        act, grad = self.activation_and_gradient(model, name, layer, video, target)
        cam = cam_variant_map(
            act.float(), grad.float(), self.config.variant, self.config.pooling, self.config.relu
        )
        size = (int(video.shape[0]), int(video.shape[1]), int(video.shape[2]))
        up = upsample_map(cam, size, self.config.upsample)
        meta = {
            "layer": name,
            "layer_shape": tuple(int(s) for s in cam.shape),
            "pooling": self.config.pooling,
            "upsample": self.config.upsample,
            "variant": self.config.variant,
        }
        return finish(up, target, self.config, "grad_cam", model, n0, **meta)


@hookimpl
def removalx_register_explainers(registry):  # type: ignore[no-untyped-def]
    registry.add("grad_cam", GradCAMConfig, GradCAM)
