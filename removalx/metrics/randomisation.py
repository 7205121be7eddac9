"""Randomisation (sanity) checks: MPRT, its smooth and efficient variants, the random logit test.

* MPRT, the model parameter randomisation test (Adebayo et al., "Sanity Checks for Saliency
  Maps", NeurIPS 2018, Sec. 3.1): re-explain the clip with models whose parameters are
  re-initialised layer by layer -- *cascading* from the logits backwards (cumulative), or
  *independent* (one layer at a time) -- and measure how similar each explanation stays to
  the original (Spearman rank correlation of the absolute maps by default; SSIM and Pearson
  as options). An explanation that survives randomisation does not depend on what the model
  learned: the method fails the check. Lower similarity is better.
* sMPRT (Hedström et al., "Sanity Checks Revisited", TMLR 2024, Sec. 4): MPRT on
  explanations averaged over ``smooth_samples`` noisy copies of the clip (Gaussian noise of
  standard deviation ``noise_magnitude * (max - min)``; the last copy is noise-free).
* eMPRT (same paper, Sec. 5): the relative rise in the explanation's complexity (discrete
  entropy of a ``n_bins`` histogram) from the original to the fully randomised model.
  Higher is better.
* Random logit test (Sixt et al., "When Explanations Lie", ICML 2020, Sec. 5): explain a
  random other class and measure the similarity (SSIM) with the target's explanation. Lower
  is better.

The randomised model is a deep copy of the classifier's ``nn.Module`` (the caller's model is
never changed) whose layers are re-initialised with their own ``reset_parameters`` (each
layer type's default initialisation, as Quantus does), drawn from the CPU generator forked
and seeded from ``seed`` (so the caller's global random state is left untouched).

Layers are the modules that own parameters and define ``reset_parameters``, in registration
order (Quantus's list minus parameter-free modules); ``layers="groups"`` bundles them into
``n_groups`` contiguous groups (Adebayo et al. randomise Inception v3 block by block), which
bounds the cost: a cascading MPRT costs one re-explanation per group (times
``smooth_samples`` for sMPRT), plus one for the original when smoothing.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from removalx.core.classifier import VideoClassifier
from removalx.errors import ConfigError, ModelError
from removalx.metrics import similarity as sim

__all__ = [
    "discrete_entropy",
    "emprt",
    "forward_order",
    "layer_groups",
    "mprt",
    "parameter_layers",
    "prepare_map",
    "random_logit",
    "randomised_models",
    "rewrap",
    "similarity_of",
]

Order = Literal["top_down", "bottom_up", "independent"]
Similarity = Literal["spearman", "pearson", "ssim"]
Explain = Callable[[Any, Tensor, int], Any]

#: Worst and best values of each similarity (the score's ``value_range``).
SIMILARITY_RANGE = {"spearman": (-1.0, 1.0), "pearson": (-1.0, 1.0), "ssim": (-1.0, 1.0)}


def parameter_layers(module: nn.Module) -> list[tuple[str, nn.Module]]:
    """Modules owning parameters and defining ``reset_parameters``, in registration order."""
    return [
        (name or type(m).__name__, m)
        for name, m in module.named_modules()
        if callable(getattr(m, "reset_parameters", None)) and any(True for _ in m.parameters(recurse=False))
    ]


def forward_order(
    clf: VideoClassifier, module: nn.Module, video: Tensor
) -> tuple[list[tuple[str, nn.Module]], dict[str, Tensor]]:
    """:func:`parameter_layers` of ``module`` in the order one forward pass of ``video`` calls them.

    Layers the pass never calls follow in registration order. Also returns each called
    layer's first input (by name). Costs one forward pass (not counted on ``clf``).
    """
    layers = parameter_layers(module)
    seen: dict[str, Tensor] = {}
    handles = []
    for name, m in layers:

        def hook(_m: nn.Module, args: tuple[Any, ...], name: str = name) -> None:
            if name not in seen and args and isinstance(args[0], Tensor):
                seen[name] = args[0].detach()

        handles.append(m.register_forward_pre_hook(hook))
    try:
        with torch.inference_mode():
            module(clf.preprocess(video.to(clf.device, torch.float32)[None]))
    finally:
        for h in handles:
            h.remove()
    rank = {n: i for i, n in enumerate(seen)}
    ordered = sorted(layers, key=lambda item: (rank.get(item[0], len(rank)), layers.index(item)))
    return ordered, seen


def layer_groups(
    layers: Sequence[tuple[str, nn.Module]], how: str | Sequence[str] = "groups", n_groups: int = 5
) -> list[list[tuple[str, nn.Module]]]:
    """The units randomised together, in forward (registration) order.

    ``how="all"``: every layer alone; ``"groups"``: ``n_groups`` contiguous groups of nearly
    equal size (fewer when there are fewer layers); a list of names: those layers, each alone.
    """
    if not layers:
        raise ModelError(
            "The model has no layer with parameters to randomise.",
            "Model randomisation needs an nn.Module with parametrised layers (Conv, Linear, ...).",
        )
    if isinstance(how, str) and how == "all":
        return [[item] for item in layers]
    if isinstance(how, str) and how == "groups":
        parts = np.array_split(np.arange(len(layers)), min(n_groups, len(layers)))
        return [[layers[i] for i in p] for p in parts]
    if isinstance(how, str):
        raise ConfigError(f"layers must be 'groups', 'all' or a list of names, got {how!r:.80}.")
    by_name = dict(layers)
    missing = [n for n in how if n not in by_name]
    if missing or not how:
        raise ConfigError(
            f"Unknown layer name(s) {', '.join(missing)[:80]!r} (or an empty list).",
            f"Pick among: {', '.join(by_name)[:200]}.",
        )
    return [[(n, by_name[n])] for n in how]


def rewrap(clf: VideoClassifier, module: nn.Module, suffix: str = "randomised") -> VideoClassifier:
    """A classifier like ``clf`` (layout, normalisation, sizes, device) around another module.

    The copy prints no "incremental inference is off" notice of its own: a metric makes one
    copy per layer group, clip and method, and the notice belongs to the model, not its copies.
    """
    mean = None if clf.mean is None else clf.mean.tolist()
    std = None if clf.std is None else clf.std.tolist()
    out = VideoClassifier(
        module,
        layout=clf.layout,
        mean=mean,
        std=std,
        input_size=clf.input_size,
        device=clf.device,
        class_names=clf.class_names,
        name=f"{clf.name} ({suffix})",
        clip_size=clf.clip_size,
    )
    out._incremental_notice = True  # type: ignore[attr-defined]
    return out


def _reset(module: nn.Module, seed: int) -> None:
    """Re-initialise ``module``'s own parameters on the CPU from a forked generator seeded ``seed``."""
    device = next(module.parameters(recurse=False)).device
    module.to("cpu")
    with torch.random.fork_rng(devices=[]):
        torch.random.default_generator.manual_seed(int(seed) % 2**63)
        with torch.no_grad():
            module.reset_parameters()  # type: ignore[operator]
    module.to(device)


def randomised_models(
    clf: VideoClassifier,
    *,
    order: Order = "top_down",
    layers: str | Sequence[str] = "groups",
    n_groups: int = 5,
    seed: int = 0,
    full_only: bool = False,
    video: Tensor | None = None,
) -> Iterator[tuple[str, VideoClassifier]]:
    """Yield ``(label, classifier)`` with one more group of layers re-initialised at each step.

    ``top_down``: cascading from the logits backwards (Adebayo et al. Sec. 3.1);
    ``bottom_up``: cascading from the input; ``independent``: one group at a time, the rest
    original (listed top-down). Layer ``i`` in the randomisation order (layers, not groups)
    draws from seed ``seed + 1 + i``. ``full_only``: yield only the last step of a cascade.
    Each yielded classifier is valid until the next step (cascades mutate one copy).
    With ``video``, layers are ordered as a forward pass of it calls them
    (:func:`forward_order`, one pass), else in registration order (Quantus's order).
    """
    if not isinstance(clf.module, nn.Module):
        raise ConfigError(
            f"Model randomisation needs a torch nn.Module model, got {type(clf.module).__name__:.80}.",
            "Wrap a PyTorch model in VideoClassifier (a plain callable has no parameters to randomise).",
        )
    if order not in ("top_down", "bottom_up", "independent"):
        raise ConfigError(f"order must be top_down, bottom_up or independent, got {order!r:.80}.")
    original = clf.module
    work = copy.deepcopy(original)
    found = parameter_layers(work) if video is None else forward_order(clf, work, video)[0]
    groups = layer_groups(found, layers, n_groups)
    if order != "bottom_up":
        groups = [list(reversed(g)) for g in reversed(groups)]
    state = copy.deepcopy(work.state_dict()) if order == "independent" else None
    position = 0
    for step, group in enumerate(groups):
        if state is not None and step:
            work.load_state_dict(state)
        for _, m in group:
            _reset(m, seed + 1 + position)
            position += 1
        if full_only and step < len(groups) - 1:
            continue
        label = group[0][0] if len(group) == 1 else f"{group[0][0]}..{group[-1][0]}"
        yield label, rewrap(clf, work, f"randomised {label[:60]}")


def prepare_map(importance: Tensor, absolute: bool, normalise: bool = True) -> Tensor:
    """The map as compared: divided by its largest magnitude (Quantus's ``normalise_by_max``), then ``|.|``."""
    a = importance.detach().to(torch.float64)
    if normalise:
        peak = a.abs().max()
        a = a / peak if float(peak) > 0 else a
    return a.abs() if absolute else a


def similarity_of(a: Tensor, b: Tensor, kind: str) -> float:
    """``spearman``, ``pearson`` or ``ssim`` (per frame, averaged) of two ``[T, H, W]`` maps."""
    if kind == "spearman":
        return float(sim.spearman(a, b))
    if kind == "pearson":
        return float(sim.pearson(a, b))
    if kind == "ssim":
        return sim.ssim(a.cpu(), b.cpu())
    raise ConfigError(f"similarity must be spearman, pearson or ssim, got {kind!r:.80}.")


def _counts(clf: Any) -> tuple[int, int]:
    return int(getattr(clf, "n_forward", 0)), int(getattr(clf, "n_backward", 0))


def _smooth_explain(
    explain: Explain,
    clf: Any,
    video: Tensor,
    target: int,
    samples: int,
    magnitude: float,
    seed: int,
    clamp: bool = True,
) -> Tensor:
    """Mean importance over ``samples`` noisy copies (sMPRT; the last copy is the clean clip).

    ``clamp``: clip the noisy copies to [0, 1] (the video contract of removalx explainers;
    Quantus does not clamp).
    """
    if samples <= 1:
        return explain(clf, video, target).importance().detach().to(torch.float64)
    g = torch.Generator().manual_seed(int(seed) % 2**63)
    std = magnitude * float(video.max() - video.min())
    total: Tensor | None = None
    for n in range(samples):
        noise = torch.randn(video.shape, generator=g) * std if n < samples - 1 else torch.zeros(video.shape)
        noisy = (
            (video + noise.to(video.device, video.dtype)).clamp(0, 1) if clamp else video + noise.to(video)
        )
        a = explain(clf, noisy, target).importance()
        a = a.detach().to(torch.float64) / samples
        total = a if total is None else total + a.to(total.device)
    assert total is not None
    return total


def mprt(
    explain: Explain,
    model: VideoClassifier,
    video: Tensor,
    target: int,
    importance: Tensor,
    *,
    order: Order = "top_down",
    layers: str | Sequence[str] = "groups",
    n_groups: int = 5,
    similarity: Similarity = "spearman",
    absolute: bool = True,
    smooth_samples: int = 1,
    noise_magnitude: float = 0.1,
    clamp: bool = True,
    seed: int = 0,
) -> dict[str, Any]:
    """MPRT (Adebayo et al. 2018, Sec. 3.1) or, with ``smooth_samples > 1``, sMPRT (Hedström et al.).

    Parameters
    ----------
    explain : callable
        ``explain(model, video, target) -> Attribution``: the method under test.
    importance : Tensor
        The method's explanation of ``video`` by ``model`` (``float[T, H, W]``); with
        ``smooth_samples > 1`` it is recomputed as the smoothed explanation instead.

    Returns
    -------
    dict
        ``value``: the similarity at the fully randomised model for a cascade, the mean over
        layers for ``independent``; ``layers`` (labels) and ``similarity_by_layer`` (one per step),
        ``n_forward`` / ``n_backward`` (the re-explanations' passes, plus the pass that orders
        the layers).
    """
    f0, b0 = _counts(model)
    spent = [0, 0]
    if smooth_samples > 1:
        importance = _smooth_explain(
            explain, model, video, target, smooth_samples, noise_magnitude, seed, clamp
        )
    ref = prepare_map(importance, absolute)
    labels: list[str] = []
    curve: list[float] = []
    for label, rand in randomised_models(
        model, order=order, layers=layers, n_groups=n_groups, seed=seed, video=video
    ):
        a = _smooth_explain(explain, rand, video, target, smooth_samples, noise_magnitude, seed, clamp)
        curve.append(similarity_of(ref, prepare_map(a, absolute).to(ref.device), similarity))
        labels.append(label)
        spent[0] += rand.n_forward
        spent[1] += rand.n_backward
    f1, b1 = _counts(model)
    value = float(np.mean(curve)) if order == "independent" else curve[-1]
    return {
        "value": value,
        "layers": labels,
        "similarity_by_layer": curve,
        "value_range": list(SIMILARITY_RANGE[similarity]),
        "n_forward": spent[0] + f1 - f0 + 1,
        "n_backward": spent[1] + b1 - b0,
    }


def discrete_entropy(a: Tensor, n_bins: int = 100) -> float:
    """Shannon entropy (nats) of the histogram of ``a``'s values in ``n_bins`` equal bins (Quantus's)."""
    from scipy import stats

    hist, _ = np.histogram(a.detach().double().cpu().numpy().ravel(), bins=n_bins)
    return float(stats.entropy(hist))


def emprt(
    explain: Explain,
    model: VideoClassifier,
    video: Tensor,
    target: int,
    importance: Tensor,
    *,
    order: Order = "bottom_up",
    layers: str | Sequence[str] = "groups",
    n_groups: int = 5,
    n_bins: int = 100,
    seed: int = 0,
) -> dict[str, Any]:
    """eMPRT (Hedström et al., Sec. 5): ``(H(a_rand) - H(a)) / H(a)`` at the fully randomised model.

    ``H`` is :func:`discrete_entropy` of the raw map (no absolute value, no normalisation, as
    Quantus's defaults). NaN when the original map's entropy is 0 (a constant map).
    """
    spent = [0, 0]
    h0 = discrete_entropy(importance, n_bins)
    h1 = float("nan")
    for _, rand in randomised_models(
        model, order=order, layers=layers, n_groups=n_groups, seed=seed, full_only=True, video=video
    ):
        h1 = discrete_entropy(explain(rand, video, target).importance(), n_bins)
        spent = [rand.n_forward, rand.n_backward]
    value = (h1 - h0) / h0 if h0 > 0 else float("nan")
    return {
        "value": value,
        "entropy_original": h0,
        "entropy_randomised": h1,
        "n_forward": spent[0] + 1,
        "n_backward": spent[1],
    }


def random_logit(
    explain: Explain,
    model: VideoClassifier,
    video: Tensor,
    target: int,
    importance: Tensor,
    *,
    similarity: Similarity = "ssim",
    absolute: bool = False,
    seed: int = 0,
    off_target: int | None = None,
) -> dict[str, Any]:
    """Random logit test (Sixt et al. 2020, Sec. 5): similarity with a random other class's map.

    The other class is drawn uniformly among the ``K - 1`` non-target classes from a generator
    seeded ``seed`` (or given as ``off_target``). Maps are divided by their largest magnitude
    before comparing (Quantus's default normalisation).
    """
    f0, b0 = _counts(model)
    k = getattr(model, "n_classes", None)
    if k is None:
        with torch.inference_mode():
            k = int(model(video.to(model.device)[None]).shape[1])
    if k < 2:
        raise ModelError(f"The random logit test needs at least 2 classes, the model has {k}.")
    if off_target is None:
        g = torch.Generator().manual_seed(int(seed) % 2**63)
        draw = int(torch.randint(0, k - 1, (1,), generator=g))
        off_target = draw + (draw >= target)
    other = explain(model, video, int(off_target)).importance()
    a, b = prepare_map(importance, absolute), prepare_map(other, absolute)
    f1, b1 = _counts(model)
    return {
        "value": similarity_of(a, b.to(a.device), similarity),
        "off_target": int(off_target),
        "value_range": list(SIMILARITY_RANGE[similarity]),
        "n_forward": f1 - f0,
        "n_backward": b1 - b0,
    }
