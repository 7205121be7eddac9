"""``saliency_tubes``: Saliency Tubes (Stergiou et al., ICIP 2019; STEP-WACV Sec. 4; ECCV-W Sec. 4.2).

The activation maps ``A_k`` of the last 3D convolutional layer weighted by the final fully
connected layer's weights for the target class, ``ST = sum_k w_{c,k} A_k`` (a class activation
map in space and time), upsampled to the clip "as in Grad-CAM" (ECCV-W). One forward pass, no
backward pass.

Defaults, in execution order from one recorded forward pass (cached per model;
:mod:`removalx_plugins.machinery.target_layer`): ``layer`` = the input of the model's global
average pooling (``nn.AdaptiveAvgPool3d`` / ``nn.AvgPool3d``, the head pooling into the
classifier), i.e. the activation maps the classifier pools, else the output of the layer
``grad_cam`` defaults to; ``classifier`` = the last ``nn.Linear`` called; no ReLU and no
normalisation (the authors' code min-max scales for display only, which keeps the ranking);
trilinear upsampling.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import torch
from pydantic import Field
from torch import Tensor, nn

from removalx.plugin import Attribution, ConfigError, Explainer, ModelError, PluginConfig, hookimpl
from removalx_plugins.explainers.grad_cam import upsample_map
from removalx_plugins.machinery.gradients import finish, require_differentiable
from removalx_plugins.machinery.target_layer import default_layer

if TYPE_CHECKING:
    from removalx.plugin import VideoClassifier

POOLS = (nn.AdaptiveAvgPool3d, nn.AvgPool3d)


class SaliencyTubesConfig(PluginConfig):
    """Saliency Tubes settings."""

    layer: str | None = Field(
        None,
        description="dotted name of the module whose output [B, C, T', H', W'] is weighted (default: the "
        "input of the global AdaptiveAvgPool3d/AvgPool3d into the classifier, else the output of "
        "grad_cam's default layer)",
    )
    classifier: str | None = Field(
        None, description="dotted name of the final nn.Linear (default: the last one called)"
    )
    upsample: Literal["trilinear", "nearest_time"] = Field(
        "trilinear",
        description="to T x H x W: trilinear (as Grad-CAM), or nearest in time + bilinear in space",
    )
    relu: bool = Field(False, description="keep only the positive part (not in the paper)")


class SaliencyTubes(Explainer):
    """``sum_k w_{c,k} A_k`` at the last 3D conv layer, upsampled to ``T x H x W``."""

    def __init__(self, config: SaliencyTubesConfig) -> None:
        self.config = config

    def _module(
        self, modules: dict[str, nn.Module], name: str, model: VideoClassifier, what: str
    ) -> nn.Module:
        if name == "" or name not in modules:
            raise ConfigError(
                f"saliency_tubes: {model.name!r} has no {what} {name[:100]!r}.",
                f"Set explainer.{what} to a dotted module name (print(model.module) lists them).",
            )
        return modules[name]

    def explain(
        self, model: VideoClassifier, video: Tensor, target: int, generator: torch.Generator
    ) -> Attribution:
        cfg = self.config
        require_differentiable(model, "saliency_tubes")  # needs the module's layers, not a callable
        module = model.module
        assert isinstance(module, nn.Module)
        modules = dict(module.named_modules())
        n0 = (model.n_forward, model.n_backward)
        choice = default_layer(model, video) if cfg.layer is None or cfg.classifier is None else None
        fc_name = cfg.classifier or (None if choice is None else choice.linear)
        if fc_name is None:
            raise ModelError(
                f"saliency_tubes needs a final fully connected layer, but {model.name!r} has no nn.Linear.",
                "Set explainer.classifier, or use grad_cam.",
            )
        fc = self._module(modules, fc_name, model, "classifier")
        if not isinstance(fc, nn.Linear):
            raise ConfigError(
                f"saliency_tubes: classifier {fc_name[:100]!r} is a {type(fc).__name__}, not an nn.Linear.",
                "Set explainer.classifier to the final nn.Linear.",
            )
        use_input = False
        name = cfg.layer
        if name is None:
            assert choice is not None
            head = None if choice.head is None else modules[choice.head]
            use_input = isinstance(head, POOLS) and choice.head_in_rank == 5
            name = choice.head if use_input else (choice.layer if choice.rank == 5 else None)
            if name is None:
                raise ModelError(
                    f"saliency_tubes is for 3D CNNs, but {model.name!r} has no nn.Conv3d or 3D average pooling.",
                    "Use grad_cam or eb_r for CNN-RNNs, or set explainer.layer.",
                )
        layer = self._module(modules, name, model, "layer")
        acts: list[Tensor] = []

        def keep(_m: nn.Module, inputs: Any, out: Any) -> None:
            value = inputs[0] if use_input else out
            if isinstance(value, Tensor):
                acts.append(value.detach())

        handle = layer.register_forward_hook(keep)
        try:
            with torch.no_grad():
                model(video[None].to(model.device, torch.float32))
        finally:
            handle.remove()
        w = fc.weight.detach()[target].float()
        if len(acts) != 1 or acts[0].dim() != 5 or acts[0].shape[1] != w.shape[0]:
            got = ", ".join(str(tuple(a.shape)) for a in acts[:3]) or "no tensor"
            raise ConfigError(
                f"saliency_tubes: layer {name[:100]!r} gave {got}; expected one [1, {w.shape[0]}, T', H', W'] "
                f"activation (as many channels as classifier {fc_name[:100]!r} has inputs).",
                "Set explainer.layer to the last 3D conv layer or block, whose maps the classifier pools.",
            )
        a = acts[0][0].float()  # [C, T', H', W']
        cam = torch.einsum("k,kthw->thw", w.to(a.device), a)
        if cfg.relu:
            cam = cam.clamp_min(0)
        size = (int(video.shape[0]), int(video.shape[1]), int(video.shape[2]))
        up = upsample_map(cam, size, cfg.upsample)
        meta = {
            "layer": name + (" (input)" if use_input else ""),
            "classifier": fc_name,
            "layer_shape": tuple(int(s) for s in cam.shape),
            "upsample": cfg.upsample,
        }
        return finish(up, target, None, "saliency_tubes", model, n0, **meta)


@hookimpl
def removalx_register_explainers(registry):  # type: ignore[no-untyped-def]
    registry.add("saliency_tubes", SaliencyTubesConfig, SaliencyTubes)
