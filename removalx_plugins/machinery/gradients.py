"""Shared machinery of the gradient-family explainers (STEP journal, Sec. V-B).

Everything the gradient plugins in ``removalx_plugins.explainers`` have in common lives here,
once:

* :func:`require_differentiable` -- refuse black-box callables with a :class:`ModelError`;
* :class:`CaptumForward` -- an ``nn.Module`` wrapper ``forward(x[B,T,H,W,C]) -> logits[B,K]``
  around a :class:`~removalx.core.classifier.VideoClassifier` that Captum can attribute through, and
  that counts backward passes into ``model.n_backward`` (``n_forward`` is counted by the
  classifier itself);
* :func:`reduce_channels` -- turn ``[T, H, W, C]`` input attributions into ``[T, H, W]``;
* :func:`finish` -- build the :class:`~removalx.core.types.Attribution` with the signed map in meta;
* :func:`input_gradients` -- batched gradients of the target at many inputs (SmoothGrad,
  Blur IG and XRAI's IG use it), with the chosen output (logit or probability);
* :class:`InputMapConfig`, :func:`finish_map`, :func:`normalize_map`, :func:`model_space` --
  the final [0, 1] normalisation and the model's input space of the input-gradient maps;
* :class:`InputMapExplainer` -- the ``explain`` of the input-gradient explainers: refuse a
  black-box model, count the passes, finish the map.

The journal (Sec. V-B) does not say how channels are reduced; the plugins default to the
signed sum over RGB (which keeps Integrated Gradients' completeness,
``sum(map) = f(x) - f(baseline)``) and expose ``"abs_sum"``, ``"abs_mean"`` and ``"max_abs"``
(Simonyan et al.'s saliency) as options; the journal-baseline recipes set what the STEP
authors' code does (see docs/explainers.md).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, TypeVar

import numpy as np
import torch
from pydantic import Field
from torch import Tensor, nn

from removalx.plugin import Attribution, Explainer, ModelError, PluginConfig

if TYPE_CHECKING:
    from removalx.plugin import VideoClassifier

__all__ = [
    "INPUT_SPACE_HELP",
    "CaptumForward",
    "GradientConfig",
    "InputMapConfig",
    "InputMapExplainer",
    "finish",
    "finish_map",
    "input_gradients",
    "integrated_gradients",
    "model_space",
    "normalize_map",
    "output_of",
    "reduce_channels",
    "require_differentiable",
    "smoothgrad",
]

ChannelReduction = Literal["sum", "abs_sum", "abs_mean", "max_abs"]
Output = Literal["logit", "probability"]


class GradientConfig(PluginConfig):
    """Options every gradient explainer shares.

    Attributes
    ----------
    channel_reduction : {"sum", "abs_sum", "abs_mean", "max_abs"}
        How ``[T, H, W, C]`` input attributions become a ``[T, H, W]`` map. The journal
        (Sec. V-B) does not state it; ``"sum"`` keeps signs and IG completeness; the STEP
        authors' code takes ``"abs_mean"`` (``"abs_sum"`` for SmoothGrad), which the
        journal-baseline recipes set.
    absolute : bool
        Report ``|map|`` as ``values``; the signed map stays in ``meta["signed"]``.
    output : {"logit", "probability"}
        What is differentiated: the target logit, or its softmax probability ``Phi_c``
        (Eq. 22-27 write ``Phi_c``, the softmax probability of Sec. III-A).
    internal_batch_size : int
        Clips per forward/backward pass for methods with many internal steps.
    """

    channel_reduction: ChannelReduction = Field(
        "sum", description="reduce RGB attributions to one value per pixel (journal silent; sum keeps signs)"
    )
    absolute: bool = Field(False, description="report |map|; the signed map stays in meta['signed']")
    output: Output = Field(
        "probability", description="differentiate the softmax probability Phi_c (Sec. III-A) or the logit"
    )
    internal_batch_size: int = Field(
        16, gt=0, description="clips per forward/backward pass; at most 4096", le=4096, strict=True
    )


def require_differentiable(model: VideoClassifier, method: str, alternative: str | None = None) -> None:
    """Raise :class:`ModelError` unless gradients flow from ``model``'s logits to its input."""
    if not getattr(model, "differentiable", False):
        alternative = alternative or "a removal recipe such as 'rise3d' or 'lime3d'"
        raise ModelError(
            f"{method} needs gradients of the logits w.r.t. the input, but the model "
            f"{getattr(model, 'name', model)!r} is a black-box callable (model.differentiable is False).",
            "Pass the torch nn.Module itself (e.g. removalx.VideoClassifier(module, layout='BCTHW')), "
            f"or use {alternative}, which needs forward passes only.",
        )


def output_of(logits: Tensor, target: int, output: str) -> Tensor:
    """``float[B]`` target score: the logit or the softmax probability ``Phi_c``."""
    if output == "probability":
        return torch.softmax(logits, dim=1)[:, target]
    return logits[:, target]


class CaptumForward(nn.Module):
    """``forward(x[B, T, H, W, C]) -> scores[B, K]`` around a :class:`VideoClassifier`.

    ``output="probability"`` returns softmax probabilities (so Captum's ``target`` selects
    ``Phi_c``), ``"logit"`` the logits. Every backward pass that reaches the output adds the
    batch size to ``model.n_backward``.
    """

    def __init__(self, model: VideoClassifier, output: str = "logit") -> None:
        super().__init__()
        self.model = model
        self.output = output
        if model.is_module:
            self.inner = model.module  # registered so Captum layer hooks see the layers

    def forward(self, x: Tensor) -> Tensor:
        out = self.model(x)
        if self.output == "probability":
            out = torch.softmax(out, dim=1)
        if out.requires_grad:
            b = int(x.shape[0])

            def _count(grad: Tensor) -> None:
                self.model.n_backward += b

            out.register_hook(_count)
        return out


def reduce_channels(attr: Tensor, how: str = "sum") -> Tensor:
    """``[..., T, H, W, C] -> [..., T, H, W]`` by ``sum``, ``abs_sum``, ``abs_mean`` or ``max_abs``."""
    if how == "sum":
        return attr.sum(-1)
    if how == "abs_sum":
        return attr.abs().sum(-1)
    if how == "abs_mean":
        return attr.abs().mean(-1)
    if how == "max_abs":
        return attr.abs().amax(-1)
    raise ValueError(f"unknown channel reduction {how!r}")  # pydantic prevents this


def finish(
    values: Tensor,
    target: int,
    config: GradientConfig | None,
    method: str,
    model: VideoClassifier,
    n0: tuple[int, int],
    **meta: Any,
) -> Attribution:
    """Attribution with ``values = |map|`` if ``config.absolute`` else the map; signed map in meta."""
    signed = values.detach().float().cpu()
    out = signed.abs() if (config is not None and config.absolute) else signed
    info: dict[str, Any] = {
        "method": method,
        "signed": signed,
        "n_forward_method": model.n_forward - n0[0],
        "n_backward_method": model.n_backward - n0[1],
    }
    if config is not None:
        info["channel_reduction"] = config.channel_reduction
        info["output"] = config.output
    info.update(meta)
    return Attribution(values=out, target=int(target), meta=info)


def input_gradients(
    model: VideoClassifier,
    inputs: Tensor | Callable[[int, int], Tensor],
    n: int,
    target: int,
    output: str,
    batch_size: int,
    reduce: Callable[[Tensor, Tensor, int], Tensor],
) -> Tensor:
    """Sum over ``n`` clips of ``reduce(grad, x, start)``, in batches of ``batch_size``.

    Parameters
    ----------
    model : VideoClassifier
        Differentiable model.
    inputs : Tensor or callable
        ``float[n, T, H, W, C]`` or ``make(start, stop) -> float[stop-start, T, H, W, C]``
        (built lazily so that ``n`` clips are never all in memory).
    n : int
        Number of clips.
    target, output :
        Class and what is differentiated (:func:`output_of`).
    batch_size : int
        Clips per forward/backward pass.
    reduce : callable
        ``reduce(grad[B,T,H,W,C], x[B,T,H,W,C], start) -> Tensor`` summed over batches.

    Returns
    -------
    Tensor
        The sum of ``reduce`` over all batches.
    """
    total: Tensor | None = None
    for start in range(0, n, batch_size):
        stop = min(n, start + batch_size)
        x = inputs[start:stop] if isinstance(inputs, Tensor) else inputs(start, stop)
        x = x.detach().to(model.device).requires_grad_(True)
        with torch.enable_grad():
            score = output_of(model(x), target, output).sum()
            (grad,) = torch.autograd.grad(score, x)
        model.n_backward += stop - start
        part = reduce(grad, x.detach(), start)
        total = part if total is None else total + part
    assert total is not None  # n > 0 is guaranteed by the configs
    return total


def smoothgrad(
    model: VideoClassifier,
    video: Tensor,
    target: int,
    *,
    n_samples: int,
    noise_level: float,
    squared: bool,
    output: str,
    batch_size: int,
    generator: torch.Generator,
    space: tuple[Tensor, Tensor] | None = None,
) -> tuple[Tensor, float]:
    """SmoothGrad (Eq. 25) or SmoothGrad-Squared (Eq. 26): ``[T, H, W, C]`` mean (squared) gradient.

    ``X' = X + N(0, sigma^2)`` with ``sigma = noise_level * (max(X) - min(X))`` (Smilkov et
    al.'s "noise level"). Each sample's noise comes from its own seed drawn from
    ``generator``, so the result does not depend on ``batch_size``.

    With ``space=(mean, std)`` (per channel, see :func:`model_space`) ``X`` is the
    model's normalised input ``(x - mean) / std``: the noise is drawn there (``sigma`` from
    its value range) and the gradients are taken with respect to it (pixel gradient times
    ``std``), as the STEP authors' code does.

    Returns
    -------
    (Tensor, float)
        The mean over samples and the absolute ``sigma`` used (in model units with
        ``space``).
    """
    std = None if space is None else space[1]
    ref = video if space is None else (video - space[0]) / space[1]
    sigma = float(noise_level * (ref.max() - ref.min()))
    step: float | Tensor = sigma if std is None else sigma * std
    seeds = torch.randint(0, 2**62, (n_samples,), generator=generator).tolist()

    def make(start: int, stop: int) -> Tensor:
        noise = torch.stack(
            [
                torch.randn(video.shape, generator=torch.Generator().manual_seed(int(s)), dtype=torch.float32)
                for s in seeds[start:stop]
            ]
        ).to(video.device)
        return video[None] + step * noise

    def reduce(grad: Tensor, x: Tensor, start: int) -> Tensor:
        if std is not None:
            grad = grad * std.to(grad.device)
        return (grad * grad if squared else grad).sum(0)

    total = input_gradients(model, make, n_samples, target, output, batch_size, reduce)
    return total / n_samples, sigma


def integrated_gradients(
    model: VideoClassifier,
    video: Tensor,
    target: int,
    *,
    steps: int,
    baseline: float | Tensor,
    method: str,
    output: str,
    batch_size: int,
) -> tuple[Tensor, Tensor]:
    """Integrated Gradients (STEP journal Eq. 24) with Captum: ``([T,H,W,C] attribution, delta)``.

    ``method="riemann_right"`` is exactly Eq. 24's ``(1/m) sum_{k=1..m}``; the baseline is
    the constant clip ``baseline`` (0 = black), or a tensor broadcast to the clip (e.g. one
    value per channel). ``delta`` is Captum's completeness error
    ``sum(attr) - (f(x) - f(baseline))`` (two extra single-clip forward passes).
    """
    from captum.attr import IntegratedGradients

    fwd = CaptumForward(model, output)
    x = video[None].to(model.device)
    attr, delta = IntegratedGradients(fwd).attribute(
        x,
        baselines=(
            torch.full_like(x, baseline)
            if not isinstance(baseline, Tensor)
            else baseline.to(x.device, x.dtype).expand_as(x).contiguous()
        ),
        target=target,
        n_steps=steps,
        method=method,
        internal_batch_size=batch_size,
        return_convergence_delta=True,
    )
    if method == "riemann_trapezoid":
        # Captum's trapezoid weights (1/2, 1, ..., 1, 1/2) / steps on steps points spanning
        # [0, 1] sum to (steps - 1) / steps; the trapezoid rule's step is 1 / (steps - 1).
        scale = steps / (steps - 1)
        delta = delta + attr.sum() * (scale - 1)
        attr = attr * scale
    return attr[0].detach(), delta.detach()


# -- input-gradient maps: model space and the final normalisation ------------------------------
Normalize = Literal["none", "percentile"]
InputSpace = Literal["pixel", "model"]
#: Help of the ``input_space`` option of the input-gradient explainers.
INPUT_SPACE_HELP = (
    "differentiate w.r.t. the clip in [0, 1] (pixel) or the model's normalised input (STEP code)"
)


class InputMapConfig(GradientConfig):
    """:class:`GradientConfig` plus the final normalisation of the input-gradient explainers.

    Attributes
    ----------
    normalize : {"none", "percentile"}
        ``"percentile"``: ``values = clip((v - min v) / (P_q(v) - min v), 0, 1)`` with
        ``P_q`` the ``percentile``-th percentile of the map (linear interpolation) -- the
        maps in [0, 1] of the STEP journal (Sec. III-A), made as the STEP authors' code makes
        them (q = 99.9). The map before it stays in ``meta["signed"]``.
    percentile : float
        ``q`` of ``"percentile"``.
    """

    normalize: Normalize = Field(
        "none", description="none, or percentile: clip((v - min) / (P_q - min), 0, 1) (STEP authors' code)"
    )
    percentile: float = Field(
        99.9, gt=0, le=100, description="q of normalize=percentile (STEP authors: 99.9)"
    )


def model_space(model: VideoClassifier, video: Tensor) -> tuple[Tensor, Tensor]:
    """``(mean, std)`` of ``model``'s input normalisation, per channel, on ``video``'s device.

    ``(0, 1)`` when the classifier does not normalise, so that "the model's input"
    ``(x - mean) / std`` is then the clip itself.
    """
    c = int(video.shape[-1])
    mean, std = getattr(model, "mean", None), getattr(model, "std", None)
    m = torch.zeros(c) if mean is None else torch.as_tensor(mean, dtype=torch.float32).reshape(-1)
    s = torch.ones(c) if std is None else torch.as_tensor(std, dtype=torch.float32).reshape(-1)
    return m.to(video.device, torch.float32), s.to(video.device, torch.float32)


def normalize_map(values: Tensor, how: str = "percentile", percentile: float = 99.9) -> Tensor:
    """``float32[T, H, W]``: ``values`` unchanged (``"none"``) or percentile-normalised to [0, 1].

    ``clip((v - min v) / (P_q(v) - min v), 0, 1)`` with numpy's linear-interpolation
    percentile, as the STEP authors' code; when ``P_q(v) = min v`` the pixels above the
    minimum get 1 and the others 0 (a constant map becomes 0).
    """
    if how == "none":
        return values
    v = values.detach().double().cpu().numpy()
    lo = float(v.min())
    hi = float(np.percentile(v, percentile))
    out = np.clip((v - lo) / (hi - lo), 0.0, 1.0) if hi > lo else (v > lo).astype(np.float64)
    return torch.from_numpy(out).float()


def finish_map(
    values: Tensor,
    target: int,
    config: InputMapConfig,
    method: str,
    model: VideoClassifier,
    n0: tuple[int, int],
    **meta: Any,
) -> Attribution:
    """:func:`finish`, then ``config.normalize`` applied to ``values`` (recorded in meta)."""
    attr = finish(values, target, config, method, model, n0, **meta)
    if config.normalize != "none":
        attr.values = normalize_map(attr.values, config.normalize, config.percentile)
        attr.meta["normalize"] = {"how": config.normalize, "percentile": config.percentile}
    return attr


ConfigT = TypeVar("ConfigT", bound=InputMapConfig)


class InputMapExplainer(Explainer, Generic[ConfigT]):
    """An input-gradient explainer: :meth:`attribute` makes the map, :meth:`explain` the rest.

    :meth:`explain` refuses a black-box model (:func:`require_differentiable`), counts the
    forward and backward passes of :meth:`attribute` and hands its ``[T, H, W]`` map and meta
    entries to :func:`finish_map`. Subclasses set :attr:`name`.
    """

    #: Registered name, used in messages and ``meta["method"]``.
    name: ClassVar[str]

    def __init__(self, config: ConfigT) -> None:
        self.config = config

    def explain(
        self, model: VideoClassifier, video: Tensor, target: int, generator: torch.Generator
    ) -> Attribution:
        require_differentiable(model, self.name)
        n0 = (model.n_forward, model.n_backward)
        values, meta = self.attribute(model, video, target, generator)
        return finish_map(values, target, self.config, self.name, model, n0, **meta)

    @abstractmethod
    def attribute(
        self, model: VideoClassifier, video: Tensor, target: int, generator: torch.Generator
    ) -> tuple[Tensor, dict[str, Any]]:
        """``float[T, H, W]`` map of ``target`` for ``video`` and the entries it adds to ``meta``."""
