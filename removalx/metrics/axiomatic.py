"""Axiomatic metrics: completeness and input invariance.

* Completeness (Sundararajan et al., "Axiomatic Attribution for Deep Networks", ICML 2017,
  Sec. 3, Proposition 1; Bhatt et al. 2020 call it summation-to-delta): the attributions
  should sum to ``f(x) - f(x')``, the change of the target's logit from the baseline ``x'``
  to the clip. removalx reports the gap ``|sum(a) - (f(x) - f(x'))|`` (lower is better),
  optionally relative to ``|f(x) - f(x')|``; Quantus returns only whether the two are exactly
  equal, which removalx keeps as the detail ``passed`` (gap <= ``atol``).
* Input invariance (Kindermans et al., "The (Un)reliability of Saliency Methods", 2017/2019,
  Sec. 3): shift every pixel of every frame by a constant and give the model a first layer
  that cancels the shift, so that the two models compute the same function on their
  inputs; the explanation should not change. Value 1 when every entry of the two maps
  agrees to ``atol`` (Quantus's test), else 0 (higher is better; the mean over clips is the
  pass rate); the largest difference is kept as ``max_abs_diff``.

The compensating layer: removalx subtracts the first layer's exact response to the shift
(``layer(d) - layer(0)``, ``d`` the shift as the module sees it after the classifier's
normalisation and resizing), which is exact for an affine first layer with or without zero
padding; Quantus changes the bias by the response at one position, exact only without
padding. The first layer is the first parametrised module in registration order and must
receive the module's input (true of sequential networks); ``logit_gap`` records how far the
shifted model's logits on the shifted clip are from the original's.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, Literal

import torch
from torch import Tensor, nn

from removalx.core.classifier import VideoClassifier
from removalx.errors import ConfigError
from removalx.metrics.perturbation import Substrate, substrate
from removalx.metrics.randomisation import forward_order, rewrap

__all__ = ["completeness", "input_invariance", "shifted_model"]


def completeness(
    model: VideoClassifier,
    video: Tensor,
    importance: Tensor,
    target: int,
    *,
    baseline: Substrate = "black",
    blur_sigma: float = 10.0,
    output: Literal["logit", "probability"] = "logit",
    relative: bool = False,
    atol: float = 1e-5,
) -> dict[str, Any]:
    """Gap between the attributions' sum and ``f(x) - f(x')`` (Sundararajan et al. 2017, Prop. 1).

    Parameters
    ----------
    baseline : str
        The reference clip ``x'`` (a substrate of :func:`removalx.metrics.perturbation.substrate`;
        ``black`` = 0, the baseline of Integrated Gradients' completeness and Quantus's default).
    output : {"logit", "probability"}
        ``f``: the target's logit (Quantus: logits) or softmax probability.
    relative : bool
        Divide the gap by ``|f(x) - f(x')|`` (NaN, undefined, when that is 0 and the gap is not:
        aggregates leave such clips out).

    Returns
    -------
    dict
        ``value`` (the gap), ``sum``, ``delta`` (``f(x) - f(x')``), ``passed``, ``n_forward`` (2).
    """
    clip = video.to(model.device, torch.float32)
    with torch.inference_mode():
        batch = torch.stack([clip, substrate(clip, baseline, blur_sigma)])
        out = model(batch).double()
        if output == "probability":
            out = torch.softmax(out, dim=-1)
        elif output != "logit":
            raise ConfigError(f"output must be 'logit' or 'probability', got {output!r:.80}.")
    delta = float(out[0, target] - out[1, target])
    total = float(importance.detach().double().sum())
    gap = abs(total - delta)
    if relative:
        gap = gap / abs(delta) if delta != 0 else (0.0 if gap == 0 else float("nan"))
    return {
        "value": gap,
        "sum": total,
        "delta": delta,
        "passed": bool(gap <= atol),
        "n_forward": 2,
    }


def shifted_model(model: VideoClassifier, video: Tensor, shift: float) -> VideoClassifier:
    """A copy of ``model`` whose first layer cancels a constant ``shift`` of every input value.

    The first layer is the first parametrised layer a forward pass of ``video`` calls; the
    copy's returns ``layer(z) - (layer(d) - layer(0))``, ``d`` the change of that layer's
    input when ``shift`` is added to the clip (Kindermans et al., Sec. 3). Exact when the
    layer is affine and its input moves by ``d`` for every clip (a constant shift through
    the classifier's normalisation and resizing).
    """
    if not isinstance(model.module, nn.Module):
        raise ConfigError(
            f"Input invariance needs a torch nn.Module model, got {type(model.module).__name__:.80}.",
            "Wrap a PyTorch model in VideoClassifier.",
        )
    module = copy.deepcopy(model.module)
    ordered, inputs = forward_order(model, module, video)
    if not inputs:
        raise ConfigError(
            "Input invariance needs a model whose first layer has parameters (Conv, Linear).",
            "Use an nn.Module model that starts with a parametrised affine layer.",
        )
    name, layer = ordered[0]
    moved = forward_order(model, module, video + shift)[1][name]
    with torch.no_grad():
        d = (moved - inputs[name])[:1]
        offset = (layer(d.clone()) - layer(torch.zeros_like(d))).detach().clone()

    def cancel(_mod: nn.Module, _inp: Any, out: Tensor) -> Tensor:
        return out - offset

    layer.register_forward_hook(cancel)
    return rewrap(model, module, f"input shifted by {shift:g}")


def _contracted(video: Tensor, shift: float) -> Tensor:
    """The clip squeezed into the part of [0, 1] where both it and it + ``shift`` stay in [0, 1]."""
    return video * (1 - abs(shift)) + max(-shift, 0.0)


def input_invariance(
    explain: Callable[[Any, Tensor, int], Any],
    model: VideoClassifier,
    video: Tensor,
    target: int,
    importance: Tensor | None,
    *,
    shift: float = -1.0,
    atol: float = 1e-4,
    contract: bool = False,
) -> dict[str, Any]:
    """Whether the explanation survives a constant input shift the model cancels (Kindermans et al.).

    Parameters
    ----------
    importance : Tensor or None
        The explanation of ``video`` by ``model`` (ignored, and re-computed, with ``contract``).
    shift : float
        Added to every value of every frame (Kindermans et al. and Quantus: -1).
    contract : bool
        For explainers bound to clips in [0, 1] (every removalx explainer): compare the
        explanations of ``x1 = (1 - |shift|) video + max(-shift, 0)`` and ``x1 + shift``,
        both in [0, 1], instead of ``video`` and ``video + shift`` (one more re-explanation;
        ``|shift| < 1``).

    Returns
    -------
    dict
        ``value`` (1.0 invariant, 0.0 not), ``max_abs_diff``, ``logit_gap``, ``n_forward``,
        ``n_backward`` (the re-explanations' passes, plus the two of the ``logit_gap`` check).
    """
    f0, b0 = model.n_forward, model.n_backward
    if contract:
        if not 0 < abs(shift) < 1:
            raise ConfigError(f"contract=True needs 0 < |shift| < 1, got shift={shift:.6g}.")
        video = _contracted(video, shift)
        importance = explain(model, video, target).importance()
    if importance is None:
        raise ConfigError("input_invariance needs the explanation of the clip (importance) or contract=True.")
    moved = shifted_model(model, video, shift)
    shifted = video + shift
    other = explain(moved, shifted, target).importance().detach().double()
    a = importance.detach().double().to(other.device)
    with torch.inference_mode():
        gap = float((model(video[None]) - moved(shifted[None])).abs().max())
    diff = float((a - other).abs().max())
    return {
        "value": 1.0 if diff <= atol else 0.0,
        "max_abs_diff": diff,
        "logit_gap": gap,
        "shift": shift,
        "value_range": [0.0, 1.0],
        "n_forward": moved.n_forward + model.n_forward - f0,
        "n_backward": moved.n_backward + model.n_backward - b0,
    }
