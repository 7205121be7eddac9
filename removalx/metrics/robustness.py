"""Robustness of an explanation to small changes of the input: how much the map moves.

Five measures of one clip ``x`` with map ``a = Phi(x)``, each a max (or mean) over perturbed
clips ``x'`` with maps ``a' = Phi(x')`` (the same explainer re-run, ``explain(model, x', c)``):

- ``max_sensitivity`` / ``avg_sensitivity`` (Yeh et al., NeurIPS 2019, Sec. 3, Def. 3.1 and the
  average form): ``||a - a'||_2 / ||a||_2``, max / mean over ``x'`` drawn uniformly from the
  L-inf ball of radius ``r`` around ``x`` (the authors' code divides by ``||a||``; Def. 3.1
  does not: ``relative=False``).
- ``local_lipschitz`` (Alvarez-Melis & Jaakkola 2018, Sec. 3, Eq. 5):
  ``max ||a - a'||_2 / ||x - x'||_2``.
- ``ris`` / ``ros``: relative input / output stability (Agarwal et al. 2022, Sec. 3.3, Eqs. 2
  and 4): ``max ||(a - a') / a||_2 / max(||(x - x') / x||_2, eps_min)`` and the same with the
  logits ``h`` in the denominator, ``max(||h(x) - h(x')||_2, eps_min)``, over the ``x'`` that
  keep the predicted class.

Perturbations (``perturbation``):

- ``noise``: ``n_samples`` clips ``x + delta``, ``delta`` uniform in ``[-r, r]`` (or Gaussian
  with std ``r``), drawn by a counter-based hash of ``(seed, sample)`` (the same draw on any
  device and in any batch), clipped to [0, 1] (the video contract) unless ``clip=False``.
- ``frame_shift`` (removalx's extension for video): the clip rolled by +1 and by -1 frame;
  each map is rolled back before it is compared, so a method whose maps follow the content
  scores 0.
- ``frame_rate`` (removalx's extension): every other frame dropped (half the frame rate);
  the map is compared with the original map at the matching frames.

Under the temporal perturbations the input at matching frames is unchanged, so only the
measures that do not divide by an input distance apply (``max_sensitivity``,
``avg_sensitivity``, ``ros``).

Cost: one batched forward pass over the perturbed clips plus one re-explanation per
perturbed clip (``n_samples`` explanations for ``noise``, 2 for ``frame_shift``, 1 for
``frame_rate``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import torch
from torch import Tensor

from removalx.core.rng import hash_normal, hash_uniform
from removalx.errors import ConfigError

__all__ = [
    "MEASURES",
    "PERTURBATIONS",
    "Measure",
    "Perturbation",
    "aggregate_ratios",
    "explanation_robustness",
    "noise_perturbations",
    "robustness_ratios",
    "temporal_perturbations",
]

Measure = Literal["max_sensitivity", "avg_sensitivity", "local_lipschitz", "ris", "ros"]
Perturbation = Literal["noise", "frame_shift", "frame_rate"]
MEASURES: tuple[str, ...] = ("max_sensitivity", "avg_sensitivity", "local_lipschitz", "ris", "ros")
PERTURBATIONS: tuple[str, ...] = ("noise", "frame_shift", "frame_rate")
#: Measures that divide by a distance of inputs (undefined under temporal perturbations).
INPUT_RELATIVE = ("local_lipschitz", "ris")
#: Added to ``||x - x'||`` of the local Lipschitz estimate (Quantus' guard against 0).
LIPSCHITZ_EPS = 1e-10

Explain = Callable[[Any, Tensor, int], Any]


def noise_perturbations(
    video: Tensor,
    index: Tensor,
    radius: float,
    *,
    noise: Literal["uniform", "gaussian"] = "uniform",
    seed: int = 0,
    clip: bool = True,
) -> Tensor:
    """Perturbed copies ``x + delta`` of one clip, one per sample index.

    Parameters
    ----------
    video : Tensor
        ``float[T, H, W, C]``.
    index : Tensor
        ``long[B]`` sample indices: row ``b`` depends only on ``(seed, index[b])``.
    radius : float
        Half-width of the uniform noise (the L-inf ball's radius) or the Gaussian's std.
    noise : {"uniform", "gaussian"}
        The noise distribution.
    seed : int
        The seed of the draw.
    clip : bool
        Clip to [0, 1] (the range every removalx model and explainer accepts).

    Returns
    -------
    Tensor
        ``float[B, T, H, W, C]`` on ``video``'s device.
    """
    index = index.to(video.device)
    shape = tuple(video.shape)
    if noise == "uniform":
        delta = (hash_uniform(seed, index, shape, stream=7) * 2 - 1) * radius
    elif noise == "gaussian":
        delta = hash_normal(seed, index, shape, stream=7) * radius
    else:
        raise ConfigError(
            f"Unknown noise {str(noise)[:40]!r}; expected 'uniform' or 'gaussian'.", "Use 'uniform'."
        )
    out = video[None].to(torch.float32) + delta.to(video.device)
    return out.clamp(0, 1) if clip else out


def _unroll(shift: int) -> Callable[[Tensor], Tensor]:
    """Roll a map back by ``shift`` frames (undoes ``torch.roll(x, shift, 0)``)."""

    def align(m: Tensor) -> Tensor:
        return torch.roll(m, -shift, 0)

    return align


def _identity(m: Tensor) -> Tensor:
    """The map unchanged."""
    return m


def temporal_perturbations(
    video: Tensor, perturbation: Perturbation
) -> list[tuple[Tensor, Callable[[Tensor], Tensor]]]:
    """The temporally perturbed clips and, for each, how to align its map with the original.

    Parameters
    ----------
    video : Tensor
        ``float[T, H, W, C]``.
    perturbation : {"frame_shift", "frame_rate"}
        One-frame shifts (+1 and -1, rolled) or half the frame rate (every other frame).

    Returns
    -------
    list of (Tensor, callable)
        ``(x', align)``; ``align(m)`` maps a ``[T', ...]`` array of ``x'`` onto the frames it
        shares with ``x`` (for ``frame_rate`` the original's arrays are subsampled instead, by
        :func:`explanation_robustness`).
    """
    if perturbation == "frame_shift":
        return [(torch.roll(video, s, 0), _unroll(s)) for s in (1, -1)]
    if perturbation == "frame_rate":
        return [(video[::2], _identity)]
    raise ConfigError(
        f"Unknown temporal perturbation {str(perturbation)[:40]!r}.", "Use 'frame_shift' or 'frame_rate'."
    )


def _norm(x: Tensor) -> Tensor:
    """L2 norm of each row of ``x`` (all axes but the first), float64."""
    return torch.linalg.vector_norm(x.flatten(1).to(torch.float64), dim=1)


def _safe(x: Tensor, eps_min: float) -> Tensor:
    """``x`` with its exact zeros replaced by ``eps_min`` (the divisor of Agarwal et al.'s ratios)."""
    return x + (x == 0).to(x.dtype) * eps_min


def robustness_ratios(
    measure: Measure,
    a: Tensor,
    a_pert: Tensor,
    *,
    x: Tensor | None = None,
    x_pert: Tensor | None = None,
    h: Tensor | None = None,
    h_pert: Tensor | None = None,
    relative: bool = True,
    eps_min: float = 1e-6,
) -> Tensor:
    """The per-perturbation ratio of ``measure`` (before the max / mean over perturbations).

    Parameters
    ----------
    measure : str
        One of :data:`MEASURES`.
    a, a_pert : Tensor
        The map of ``x`` (``[...]``) and those of the perturbed clips (``[B, ...]``), aligned.
    x, x_pert : Tensor, optional
        The clip and the perturbed clips (``local_lipschitz``, ``ris``).
    h, h_pert : Tensor, optional
        Logits ``[K]`` of ``x`` and ``[B, K]`` of the perturbed clips (``ros``).
    relative : bool
        Sensitivities divided by ``||a||_2`` (Yeh et al.'s code; Quantus).
    eps_min : float
        Agarwal et al.'s ``epsilon_min`` (zero guard of RIS / ROS; zero ``||a||`` guard).

    Returns
    -------
    Tensor
        ``float64[B]``.
    """
    a = a.to(torch.float64)[None]
    a_pert = a_pert.to(torch.float64)
    if measure in ("max_sensitivity", "avg_sensitivity"):
        num = _norm(a - a_pert)
        return num / _safe(_norm(a), eps_min) if relative else num
    if measure in ("local_lipschitz", "ris"):
        if x is None or x_pert is None:
            raise ConfigError(
                f"{measure} needs the clip x and the perturbed clips x_pert.", "Pass x= and x_pert=."
            )
        x64, xp = x.to(torch.float64)[None], x_pert.to(torch.float64)
        if measure == "local_lipschitz":
            return _norm(a - a_pert) / (_norm(x64 - xp) + LIPSCHITZ_EPS)
        den = _norm((x64 - xp) / _safe(x64, eps_min)).clamp_min(eps_min)
        return _norm((a - a_pert) / _safe(a, eps_min)) / den
    if measure == "ros":
        if h is None or h_pert is None:
            raise ConfigError("ros needs the logits h and h_pert.", "Pass h= and h_pert=.")
        den = _norm(h.to(torch.float64)[None] - h_pert.to(torch.float64)).clamp_min(eps_min)
        return _norm((a - a_pert) / _safe(a, eps_min)) / den
    raise ConfigError(
        f"Unknown robustness measure {str(measure)[:40]!r}.", f"Use one of {', '.join(MEASURES)}."
    )


def aggregate_ratios(ratios: Tensor, keep: Tensor, how: Literal["max", "mean"]) -> float:
    """Max or mean of the kept ratios; NaN when no perturbation was kept."""
    kept = ratios[keep.to(ratios.device)]
    if kept.numel() == 0:
        return float("nan")
    return float(kept.max() if how == "max" else kept.mean())


def _check_measure(measure: str, perturbation: str) -> None:
    """Refuse unknown names and the input-relative measures under temporal perturbations."""
    if measure not in MEASURES:
        raise ConfigError(
            f"Unknown robustness measure {str(measure)[:40]!r}.", f"Use one of {', '.join(MEASURES)}."
        )
    if perturbation not in PERTURBATIONS:
        raise ConfigError(
            f"Unknown perturbation {str(perturbation)[:40]!r}.", f"Use one of {', '.join(PERTURBATIONS)}."
        )
    if perturbation != "noise" and measure in INPUT_RELATIVE:
        raise ConfigError(
            f"{measure} divides by the change of the input, which is zero at the frames a "
            f"{perturbation} perturbation shares with the clip.",
            "Use perturbation=noise for local_lipschitz and ris; max_sensitivity, avg_sensitivity "
            "and ros accept frame_shift and frame_rate.",
        )


def _perturbed_chunks(
    video: Tensor, perturbation: str, n_samples: int, batch_size: int, noise_args: dict[str, Any]
) -> Any:
    """Yield ``(x_pert [B, ...], aligns)`` chunks; ``aligns[i]`` maps clip i's map onto ``x``'s frames."""
    if perturbation == "noise":
        for start in range(0, n_samples, batch_size):
            index = torch.arange(start, min(start + batch_size, n_samples), dtype=torch.long)
            x_pert = noise_perturbations(video, index, **noise_args)
            yield x_pert, [None] * len(index)
        return
    pairs = temporal_perturbations(video, perturbation)  # type: ignore[arg-type]
    yield torch.stack([p for p, _ in pairs]), [f for _, f in pairs]


def _reexplain(
    explain: Explain, model: Any, clips: Tensor, target: int, aligns: list[Any], shape: Any
) -> Tensor:
    """The maps of the perturbed clips (one explanation each), aligned, stacked ``[B, ...]``."""
    maps = []
    for clip, align in zip(clips, aligns):
        m = torch.as_tensor(explain(model, clip, int(target)).importance()).detach().to(clips.device)
        m = align(m) if align is not None else m
        if tuple(m.shape) != tuple(shape):
            raise ConfigError(
                f"The re-explained map has shape {tuple(m.shape)}, expected {tuple(shape)}.",
                "explain(model, video, target) must return an Attribution of the video it was given.",
            )
        maps.append(m.float())
    return torch.stack(maps)


def explanation_robustness(
    model: Any,
    video: Tensor,
    importance: Tensor,
    target: int,
    explain: Explain,
    *,
    measure: Measure,
    perturbation: Perturbation = "noise",
    n_samples: int = 50,
    radius: float = 0.2,
    noise: Literal["uniform", "gaussian"] = "uniform",
    seed: int = 0,
    clip: bool = True,
    keep_prediction: bool = False,
    relative: bool = True,
    eps_min: float = 1e-6,
    batch_size: int = 16,
) -> dict[str, Any]:
    """One robustness measure of one clip's map (see the module docstring for the definitions).

    Parameters
    ----------
    model : VideoClassifier
        Callable on ``[B, T, H, W, C]`` returning logits; ``.device``.
    video : Tensor
        ``float32[T, H, W, C]`` in [0, 1].
    importance : Tensor
        The map ``a = Phi(x)``, ``float[T, H, W]``.
    target : int
        The explained class (passed to ``explain``).
    explain : callable
        ``explain(model, video, target) -> Attribution``: the same method re-run.
    measure, perturbation : str
        See :data:`MEASURES` and :data:`PERTURBATIONS`.
    n_samples, radius, noise, seed, clip :
        The ``noise`` perturbations (:func:`noise_perturbations`); ignored by the temporal ones.
    keep_prediction : bool
        Drop the perturbations that change the predicted class (Agarwal et al. do; Yeh et al.
        and Alvarez-Melis & Jaakkola do not).
    relative, eps_min :
        See :func:`robustness_ratios`.
    batch_size : int
        Perturbed clips per forward pass.

    Returns
    -------
    dict
        ``value`` (NaN when every perturbation was dropped), ``ratios`` (per perturbation, NaN
        where dropped), ``kept``, ``n_perturbations``, ``n_forward`` and ``n_backward`` (the
        model calls of the forward passes and the re-explanations).
    """
    _check_measure(measure, perturbation)
    device = getattr(model, "device", video.device)
    x = video.to(device=device, dtype=torch.float32)
    a = torch.as_tensor(importance).detach().to(device=device, dtype=torch.float32)
    n0, b0 = int(getattr(model, "n_forward", 0)), int(getattr(model, "n_backward", 0))
    with torch.inference_mode():
        h = model(x[None])[0].float()
    pred = int(h.argmax())
    x_ref, a_ref = (x[::2], a[::2]) if perturbation == "frame_rate" else (x, a)
    noise_args = {"radius": radius, "noise": noise, "seed": seed, "clip": clip}
    ratios, keeps = [], []
    for x_pert, aligns in _perturbed_chunks(x, perturbation, n_samples, batch_size, noise_args):
        with torch.inference_mode():
            h_pert = model(x_pert).float()
        a_pert = _reexplain(explain, model, x_pert, target, aligns, a_ref.shape)
        r = robustness_ratios(
            measure,
            a_ref,
            a_pert,
            x=x_ref,
            x_pert=x_pert,
            h=h,
            h_pert=h_pert,
            relative=relative,
            eps_min=eps_min,
        )
        ratios.append(r)
        keeps.append(h_pert.argmax(1) == pred if keep_prediction else torch.ones_like(r, dtype=torch.bool))
    all_r, keep = torch.cat(ratios), torch.cat(keeps).to(device)
    how: Literal["max", "mean"] = "mean" if measure == "avg_sensitivity" else "max"
    shown = torch.where(keep, all_r, torch.full_like(all_r, float("nan")))
    return {
        "value": aggregate_ratios(all_r, keep, how),
        "ratios": [float(v) for v in shown.cpu()],
        "kept": int(keep.sum()),
        "n_perturbations": int(keep.numel()),
        "n_forward": int(getattr(model, "n_forward", 0)) - n0,
        "n_backward": int(getattr(model, "n_backward", 0)) - b0,
    }
