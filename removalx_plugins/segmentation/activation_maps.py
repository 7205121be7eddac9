"""``activation_maps``: a layer's activation maps as soft-mask features (the CAM family).

Score-CAM (Wang et al., CVPR-W 2020, Sec. 3.2, Eq. 3-5) and Ablation-CAM (Desai & Ramaswamy,
WACV 2020, Sec. 3) are removal methods whose features are the channels of one layer:

* feature ``k`` is channel ``k`` of the layer's activation on the clip, ``A_k`` of shape
  ``[T', H', W']`` (a 3D layer) or stacked per frame (a 2D layer run on the frames of a
  CNN-RNN, as ``grad_cam`` reads it);
* :meth:`ActivationMapSpace.render` turns a coalition ``z`` into the keep-mask
  ``min(1, sum_k z_k H_k)`` with ``H_k`` = ``A_k`` upsampled to ``T x H x W`` (trilinear, or
  nearest in time and bilinear in space) and min-max normalised to [0, 1] (Score-CAM Eq. 3-4;
  a constant map becomes 0, as in the authors' code, which skips it): for a one-feature
  coalition, the Score-CAM mask ``H_k``; with the ``constant`` removal at 0 the perturbed clip
  is ``X (.) H_k``;
* :meth:`ActivationMapSpace.cam` is the CAM of channel weights ``w``: ``ReLU(sum_k w_k A_k)``
  at the layer's resolution, then upsampled (as ``grad_cam``); ``expand`` is the same sum
  without the ReLU. The ``cam_weights`` summary calls it.

The layer is the ``layer`` option or the default layer of ``grad_cam`` (the last
spatio-temporal activation on the path into the global pooling). The activation comes from
one forward pass of the model's module on the clip at segmentation (not counted in
``n_forward``). The space also remembers the coalitions it last rendered
(:attr:`ActivationMapSpace.last_coalitions`), which the ``layer_ablation`` removal reads to
zero the removed channels inside the layer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from removalx.plugin import ConfigError, FeatureSpace, PluginConfig, Segmenter, hookimpl
from removalx_plugins.explainers.grad_cam import Upsample, layer_field, resolve_layer, upsample_field

if TYPE_CHECKING:
    from removalx.plugin import VideoClassifier

#: Channels upsampled at once when a coalition keeps many (bounds the temporary memory).
CHUNK = 64


class ActivationMapsConfig(PluginConfig):
    """The layer whose channels are the features, and how its maps reach the clip's size."""

    layer: str | None = layer_field("the layer whose channels are the features,")
    upsample: Upsample = upsample_field()


def upsample_maps(maps: Tensor, size: tuple[int, int, int], mode: str) -> Tensor:
    """``[K, T', H', W'] -> [K, T, H, W]``: trilinear, or nearest in time then bilinear per frame."""
    x = maps[:, None].float()
    if mode == "trilinear":
        return F.interpolate(x, size=size, mode="trilinear", align_corners=False)[:, 0]
    t, h, w = size
    x = F.interpolate(x, size=(t, *maps.shape[2:]), mode="nearest")[:, 0]  # [K, T, H', W']
    k = x.shape[0]
    y = F.interpolate(x.reshape(k * t, 1, *maps.shape[2:]), size=(h, w), mode="bilinear", align_corners=False)
    return y.reshape(k, t, h, w)


def min_max(maps: Tensor) -> Tensor:
    """Each map of ``[K, ...]`` scaled to [0, 1]; a constant map becomes 0."""
    flat = maps.reshape(maps.shape[0], -1)
    lo = flat.amin(1, keepdim=True)
    span = flat.amax(1, keepdim=True) - lo
    out = torch.where(span > 0, (flat - lo) / span.clamp_min(torch.finfo(flat.dtype).tiny), 0.0)
    return out.reshape(maps.shape)


def layer_activation(model: VideoClassifier, layer: nn.Module, name: str, video: Tensor) -> Tensor:
    """The activation of ``layer`` on ``video`` as ``[C, T', H', W']`` (one forward pass, no gradient)."""
    outputs: list[Tensor] = []

    def keep(_m: nn.Module, _inputs: object, out: object) -> None:
        if isinstance(out, Tensor):
            outputs.append(out.detach())

    handle = layer.register_forward_hook(keep)
    try:
        with torch.inference_mode():
            module = model.module
            assert isinstance(module, nn.Module)
            module(model.preprocess(video[None].to(model.device, torch.float32)))
    finally:
        handle.remove()
    dims = {o.dim() for o in outputs}
    if dims not in ({4}, {5}) or (dims == {5} and len(outputs) > 1):
        got = ", ".join(str(tuple(o.shape)) for o in outputs[:3]) or "no tensor"
        raise ConfigError(
            f"activation_maps: layer {name[:80]!r} gave {got}; expected one [B, C, T', H', W'] output, "
            "or [B*T', C, H', W'] from a 2D layer run on the frames.",
            "Set segmentation.layer to a convolution layer or block.",
        )
    if outputs[0].dim() == 5:
        return outputs[0][0].float()  # [C, T', H', W']
    return torch.cat(outputs).transpose(0, 1).float()  # frames stacked in time


class ActivationMapSpace(FeatureSpace):
    """``F = C`` soft features: the normalised, upsampled activation maps of one layer."""

    def __init__(self, activation: Tensor, shape: tuple[int, int, int], upsample: str, layer: str) -> None:
        self.activation = activation  # [C, T', H', W'], the raw A_k
        self.shape = shape
        self.upsample = upsample
        self.layer = layer
        self.n_features = int(activation.shape[0])
        self.labels = None
        self.meta: dict[str, Any] = {
            "layer": layer,
            "layer_shape": tuple(int(s) for s in activation.shape),
            "upsample": upsample,
        }
        #: The coalitions ``z`` of the last :meth:`render` call (read by ``layer_ablation``).
        self.last_coalitions: Tensor | None = None

    def to(self, device: torch.device | str) -> ActivationMapSpace:
        self.activation = self.activation.to(device)
        return self

    def masks(self, channels: Tensor) -> Tensor:
        """``H_k`` for the given channel indices: ``float[K, T, H, W]`` in [0, 1]."""
        return min_max(upsample_maps(self.activation[channels], self.shape, self.upsample))

    def render(self, z: Tensor, index: Tensor | None = None) -> Tensor:
        """``min(1, sum_k z_k H_k)`` per row, ``float[B, T, H, W]``; only the used channels are upsampled."""
        self.last_coalitions = z
        z = z.to(self.activation.device, torch.float32)
        keep = torch.zeros((z.shape[0], *self.shape), device=z.device)
        used = torch.nonzero(z.abs().sum(0) > 0).flatten()
        for part in used.split(CHUNK):
            keep += torch.einsum("bk,kthw->bthw", z[:, part], self.masks(part))
        return keep.clamp_(0.0, 1.0)

    def layer_sum(self, values: Tensor) -> Tensor:
        """``sum_k values_k A_k`` at the layer's resolution, ``float[T', H', W']``."""
        v = values.to(self.activation.device, torch.float32)
        return torch.einsum("k,kthw->thw", v, self.activation)

    def cam(self, values: Tensor, relu: bool = True) -> Tensor:
        """``ReLU(sum_k w_k A_k)`` at the layer's resolution, upsampled to ``T x H x W``."""
        m = self.layer_sum(values)
        m = m.clamp_min(0) if relu else m
        return upsample_maps(m[None], self.shape, self.upsample)[0]

    def expand(self, values: Tensor) -> Tensor:
        return self.cam(values, relu=False)


class ActivationMaps(Segmenter):
    """The channels of a layer as soft-mask features (Score-CAM, Ablation-CAM)."""

    #: Removing every channel removes every pixel (``render(0) = 0``); removing one may remove
    #: none (the others' maps cover it), and masks are soft.
    space_provides = frozenset({"covering", "layer_channels"})

    def __init__(self, config: ActivationMapsConfig) -> None:
        self.config = config
        self.model: VideoClassifier | None = None

    def bind_model(self, model: VideoClassifier) -> None:
        self.model = model

    def segment(self, video: Tensor, generator: torch.Generator) -> ActivationMapSpace:
        model = self.model
        if model is None or not isinstance(model.module, nn.Module):
            raise ConfigError(
                "activation_maps reads a layer of the model, but "
                + ("no model was bound" if model is None else f"{model.name!r} is not a torch nn.Module")
                + ".",
                "Run it through removalx.Explainer (which binds the model) with a PyTorch model.",
            )
        name = resolve_layer(model, self.config.layer, "activation_maps", video)
        layer = dict(model.module.named_modules())[name]
        act = layer_activation(model, layer, name, video)
        shape = (int(video.shape[0]), int(video.shape[1]), int(video.shape[2]))
        return ActivationMapSpace(act, shape, self.config.upsample, name)


@hookimpl
def removalx_register_segmenters(registry):  # type: ignore[no-untyped-def]
    registry.add("activation_maps", ActivationMapsConfig, ActivationMaps)
