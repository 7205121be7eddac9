"""``layer_ablation``: remove a feature by zeroing its channel inside the layer (Ablation-CAM).

Ablation-CAM (Desai & Ramaswamy, WACV 2020, Sec. 3) removes channel ``k`` of a layer by
setting its activation ``A_k`` to 0 and reads the class score of the rest of the network.
That removal lives in feature space, not in pixel space: no clip ``keep * X + (1 - keep) *
fill`` equals it. removalx expresses it as a removal stage honestly: the perturbed batch is
the clean clip, repeated, and a one-shot forward hook on the layer multiplies the layer's
output on that batch by the coalitions (``z_k = 0``: channel ``k`` zeroed; for a frame-wise
2D layer every frame's channel ``k``), so the next forward pass of the model is the ablated
network. It works only with the ``activation_maps`` segmentation (whose space names the layer
and hands over the coalitions it renders). It declares ``acts_inside_model``, so the pipeline
never runs incremental inference for it (the clips do not change, so incremental inference
would reuse the clean clip's output); a batch that the model did not run through the layer
is reported as an error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from removalx.plugin import ConfigError, FeatureSpace, ModelError, PluginConfig, Removal, hookimpl

if TYPE_CHECKING:
    from removalx.plugin import VideoClassifier


class LayerAblationConfig(PluginConfig):
    """No options: the layer is the segmentation's."""


class LayerAblation(Removal):
    """Zero the removed channels of the ``activation_maps`` layer on the next forward pass."""

    acts_inside_model = True  # incremental inference is turned off for it by the pipeline
    space_requires = frozenset({"layer_channels"})  # recipes validate refuses other segmentations

    def __init__(self, config: LayerAblationConfig) -> None:
        self.config = config
        self.model: VideoClassifier | None = None
        self.layer: nn.Module | None = None
        self.space: Any = None
        self.handle: Any = None
        self.pending: Tensor | None = None

    def bind_model(self, model: VideoClassifier) -> None:
        self.model = model

    def prepare(self, video: Tensor, space: FeatureSpace, seed: int) -> None:
        name = getattr(space, "layer", None)
        if not hasattr(space, "last_coalitions") or not isinstance(name, str):
            raise ConfigError(
                f"layer_ablation zeroes channels of a layer, but the segmentation gave a "
                f"{type(space).__name__[:60]} without one.",
                "Use segmentation: {name: activation_maps} with removal: {name: layer_ablation}.",
            )
        assert self.model is not None and isinstance(self.model.module, nn.Module)
        self.space = space
        self.layer = dict(self.model.module.named_modules())[name]
        self._disarm()

    def _disarm(self) -> None:
        if self.handle is not None:
            self.handle.remove()
        self.handle, self.pending = None, None

    def _gate(self, _m: nn.Module, _inputs: object, out: object) -> object:
        gates, self.pending = self.pending, None
        if self.handle is not None:
            self.handle.remove()
            self.handle = None
        if gates is None or not isinstance(out, Tensor):
            return None
        b = gates.shape[0]
        if out.dim() == 5 and out.shape[0] == b:
            return out * gates.to(out)[:, :, None, None, None]
        if out.dim() == 4 and out.shape[0] % b == 0:  # frame-wise [B*T', C, H', W']
            return out * gates.to(out).repeat_interleave(out.shape[0] // b, 0)[:, :, None, None]
        raise ModelError(
            f"layer_ablation: the layer gave {tuple(out.shape)} for a batch of {b}.",
            "Choose a layer whose output is [B, C, T', H', W'] or [B*T', C, H', W'].",
        )

    def fill(self, video: Tensor, keep: Tensor, index: Tensor) -> Tensor:
        return video

    def apply(self, video: Tensor, keep: Tensor, index: Tensor, out: Tensor | None = None) -> Tensor:
        """The clean clip for every row; the layer's channels are gated on the next forward pass."""
        if self.pending is not None:
            self._disarm()
            raise ModelError(
                "layer_ablation: the model did not run the layer on the previous batch (incremental "
                "inference or cached outputs reuse a clean pass).",
                "Set behavior.incremental=false in the recipe.",
            )
        z = self.space.last_coalitions
        b = int(keep.shape[0])
        if z is None or z.shape[0] != b:
            z = torch.ones((b, self.space.n_features), device=video.device)  # no coalition: ablate nothing
        assert self.layer is not None
        self.pending = z.detach().float()
        self.handle = self.layer.register_forward_hook(self._gate)
        return video.unsqueeze(0).expand(b, *video.shape).contiguous()


@hookimpl
def removalx_register_removals(registry):  # type: ignore[no-untyped-def]
    registry.add("layer_ablation", LayerAblationConfig, LayerAblation)
