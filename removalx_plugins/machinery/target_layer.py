"""The default layer of the layer-map explainers, chosen from one recorded forward pass.

Grad-CAM (Selvaraju et al., ICCV 2017, Sec. 3) and the STEP journal's baselines (Sec. V-B:
Grad-CAM and Excitation Backprop at "the last 3D convolutional layer") read the *last
convolutional feature maps*: the activation the network pools into its classifier. removalx
reads that as **the last spatio-temporal activation on the path into the global pooling**, in
execution order (never in module registration order, which on a residual network names the
1x1x1 projection of the skip path and on torchvision's S3D the classifier head):

1. One forward pass is recorded with hooks on every module: for each call, when it starts and
   ends, its input and output shapes, and whether it is a pooling, a convolution or a Linear.
2. The **head pooling** is the first pooling call (average, max, adaptive, LP; 1d/2d/3d) that
   shrinks its input's extent (``T'*H'*W'``, or ``H'*W'`` for a frame-wise map) and after which
   the network computes no more features: no convolution with a kernel wider than 1 starts
   after it and nothing of the same rank with a larger extent is returned after it (so the
   pooling inside a squeeze-and-excitation gate, or a stride-1 max pooling branch of an
   Inception block, is not the head).
3. The **layer** is the module call that *ends last before the head pooling starts* among the
   calls that return one tensor of the head pooling's input rank (5: ``[B, C, T', H', W']``; 4:
   a frame-wise ``[B*T', C, H', W']`` map of a CNN-RNN's frame CNN), after the first
   convolution has run. The last to end is the largest module enclosing that activation: the
   residual *block* or *stage* after its sum and ReLU (``layer4`` of torchvision's R3D-18,
   ``layer3`` of ``zoo:r3d_tiny``), as pytorch-grad-cam recommends ``model.layer4[-1]`` for
   ResNets; ``features`` of torchvision's S3D and of ``zoo:cnn_gru`` (the frame CNN's output that
   its ``spatial_pool`` feeds to the GRU).
4. Without a head pooling (a model that pools with ``x.mean(...)``), the layer is the last call
   with a 5-D output after the first convolution, else the last with a 4-D output.

The choice is cached per module and input shape, so the recorded pass runs once per model
(a set-up pass: not counted in ``n_forward_method``). An explicit ``layer`` bypasses all this.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from removalx.plugin import ModelError, RemovalxError

if TYPE_CHECKING:
    from removalx.plugin import VideoClassifier

__all__ = ["CONVS", "POOLINGS", "Call", "LayerChoice", "choose_layer", "default_layer", "record_calls"]

POOLINGS: tuple[type[nn.Module], ...] = tuple(
    getattr(nn, f"{kind}{d}d")
    for kind in ("AvgPool", "MaxPool", "AdaptiveAvgPool", "AdaptiveMaxPool", "LPPool", "FractionalMaxPool")
    for d in (1, 2, 3)
    if hasattr(nn, f"{kind}{d}d")
)
CONVS: tuple[type[nn.Module], ...] = (
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
)


@dataclass(frozen=True)
class Call:
    """One module call of the recorded forward pass (ticks count hook events, in order)."""

    name: str
    start: int
    end: int
    in_shape: tuple[int, ...] | None
    out_shape: tuple[int, ...] | None  # None: not one tensor
    pooling: bool
    conv: bool
    wide: bool  # a convolution whose kernel is wider than 1 somewhere: it computes features
    linear: bool


@dataclass(frozen=True)
class LayerChoice:
    """What the recorded pass chose: the default ``layer``, the ``head`` pooling, the last ``linear``."""

    layer: str | None
    rank: int | None
    head: str | None
    head_in_rank: int | None
    linear: str | None


def _extent(shape: tuple[int, ...]) -> int:
    return math.prod(shape[2:])


def record_calls(module: nn.Module, run: Callable[[], Any]) -> list[Call]:
    """Run ``run()`` (a forward pass of ``module``) with hooks on every submodule; calls in end order."""
    calls: list[Call] = []
    stack: list[tuple[int, tuple[int, ...] | None]] = []
    tick = [0]

    def pre(_m: nn.Module, inputs: Any) -> None:
        first = inputs[0] if inputs else None
        stack.append((tick[0], tuple(first.shape) if isinstance(first, Tensor) else None))
        tick[0] += 1

    def post(name: str, m: nn.Module) -> Callable[..., None]:
        conv = isinstance(m, CONVS)
        wide = conv and any(int(k) > 1 for k in getattr(m, "kernel_size", ()))
        flags = {"pooling": isinstance(m, POOLINGS), "conv": conv, "wide": wide}

        def hook(_m: nn.Module, _inputs: Any, out: Any) -> None:
            start, in_shape = stack.pop()
            shape = tuple(out.shape) if isinstance(out, Tensor) else None
            calls.append(
                Call(name, start, tick[0], in_shape, shape, linear=isinstance(m, nn.Linear), **flags)
            )
            tick[0] += 1

        return hook

    handles = []
    try:
        for name, m in module.named_modules():
            if m is module:
                continue
            handles.append(m.register_forward_pre_hook(pre))
            handles.append(m.register_forward_hook(post(name, m)))
        run()
    finally:
        for h in handles:
            h.remove()
    return calls


def _is_head(i: int, calls: list[Call]) -> bool:
    """Whether ``calls[i]`` is a pooling that shrinks its input and after which no features are computed."""
    c = calls[i]
    if not c.pooling or c.in_shape is None or c.out_shape is None:
        return False
    rank = len(c.out_shape)
    if rank not in (4, 5) or len(c.in_shape) != rank or _extent(c.out_shape) >= _extent(c.in_shape):
        return False
    for d in calls[i + 1 :]:  # every call that ends after this one
        if d.wide and d.start > c.end:
            return False
        if (
            d.out_shape is not None
            and len(d.out_shape) == rank
            and _extent(d.out_shape) > _extent(c.out_shape)
        ):
            return False
    return True


def choose_layer(calls: list[Call]) -> LayerChoice:
    """The default layer of a recorded forward pass (module docstring, steps 2-4)."""
    head = next((c for i, c in enumerate(calls) if _is_head(i, calls)), None)
    head_name = None if head is None else head.name
    head_rank = None if head is None or head.in_shape is None else len(head.in_shape)
    first_conv = min((c.end for c in calls if c.conv), default=None)
    linear = next((c.name for c in reversed(calls) if c.linear), None)
    limit = math.inf if head is None else head.start
    for rank in (5, 4) if head_rank is None else (head_rank,):
        found = [
            c
            for c in calls
            if first_conv is not None
            and first_conv <= c.end < limit
            and c.out_shape is not None
            and len(c.out_shape) == rank
        ]
        if found:
            return LayerChoice(found[-1].name, rank, head_name, head_rank, linear)
    return LayerChoice(None, None, head_name, head_rank, linear)


_CACHE: weakref.WeakKeyDictionary[nn.Module, dict[tuple[Any, ...], LayerChoice]] = weakref.WeakKeyDictionary()


def default_layer(model: VideoClassifier, video: Tensor) -> LayerChoice:
    """The :class:`LayerChoice` of ``model`` on clips shaped like ``video`` (``[T, H, W, C]``), cached.

    The first call per module and clip shape records one forward pass without gradients
    (``model.module`` on the preprocessed clip; not counted in ``model.n_forward``).
    """
    module = model.module
    assert isinstance(module, nn.Module)  # require_differentiable ran first
    key = (tuple(video.shape), model.layout, model.input_size, str(model.device))
    per_module = _CACHE.setdefault(module, {})
    if key not in per_module:
        x = model.preprocess(video[None])

        def run() -> None:
            with torch.no_grad():
                module(x)

        try:
            calls = record_calls(module, run)
        except RemovalxError:
            raise
        except Exception as exc:
            raise ModelError(
                f"Model {model.name} raised {type(exc).__name__} on the forward pass that chooses the "
                f"default layer (input {tuple(x.shape)}): {str(exc)[:300]}",
                "Check that the model accepts this input, or set explainer.layer explicitly.",
            ) from exc
        per_module[key] = choose_layer(calls)
    return per_module[key]
