"""Complexity of an attribution map: sparseness, entropy and effective complexity.

Three measures of how concentrated a map is, computed from the map alone (no forward pass):

- :func:`sparseness`: the Gini index of ``|a|`` (Chalasani et al., ICML 2020, Sec. 5.1,
  after Hurley & Rickard 2009). 0 for a constant map, ``1 - 1/N`` for a map with one
  non-zero value; higher is sparser.
- :func:`complexity`: the Shannon entropy (natural log) of the fractional contributions
  ``|a_i| / sum |a|`` (Bhatt et al., IJCAI 2020, Sec. 4, "complexity"). 0 for one non-zero
  value, ``log N`` for a constant map; lower is simpler.
- :func:`effective_complexity`: the number of values with ``|a_i| / max |a| > eps``
  (Nguyen & Martinez 2020, as Quantus operationalises it); lower is simpler.

For video the ``N`` values are all ``T * H * W`` pixels of the clip (``pool="pixels"``) or
the ``T`` per-frame sums of ``|a|`` (``pool="frames"``: how concentrated the map is in time).
An all-zero map is treated as the limit of a constant map (sparseness 0, complexity
``log N``, effective complexity 0).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor

from removalx.errors import ConfigError

__all__ = ["Pool", "complexity", "effective_complexity", "pooled_magnitudes", "sparseness"]

Pool = Literal["pixels", "frames"]


def pooled_magnitudes(importance: Tensor, pool: Pool = "pixels") -> Tensor:
    """``|a|`` as a float64 vector: every value (``pixels``) or per-frame sums (``frames``).

    Parameters
    ----------
    importance : Tensor
        ``float[T, H, W]`` (any shape whose first axis is time).
    pool : {"pixels", "frames"}
        Whether the measures see all ``T * H * W`` values or the ``T`` frame totals.

    Returns
    -------
    Tensor
        ``float64[N]``, non-negative.
    """
    a = torch.as_tensor(importance).detach().to(torch.float64).abs()
    if not bool(torch.isfinite(a).all()):
        raise ConfigError(
            "The attribution map has non-finite values (NaN or inf).",
            "Complexity measures need a finite map; check the explainer's output.",
        )
    if pool == "pixels":
        return a.flatten()
    if pool == "frames":
        return a.flatten(1).sum(1) if a.ndim > 1 else a
    raise ConfigError(
        f"Unknown pool {str(pool)[:40]!r}; expected 'pixels' or 'frames'.", "Use pool='pixels'."
    )


def sparseness(importance: Tensor, pool: Pool = "pixels") -> float:
    """Gini index of ``|a|`` (Chalasani et al. 2020, Sec. 5.1; Hurley & Rickard's Gini).

    ``G = sum_k (2k - N - 1) v_(k) / (N sum_k v_k)`` with ``v_(1) <= ... <= v_(N)`` the sorted
    magnitudes. Lies in ``[0, 1 - 1/N]``; higher is sparser.

    Parameters
    ----------
    importance : Tensor
        The map ``float[T, H, W]``.
    pool : {"pixels", "frames"}
        See :func:`pooled_magnitudes`.

    Returns
    -------
    float
        The Gini index (0 for an all-zero map).
    """
    v = torch.sort(pooled_magnitudes(importance, pool)).values
    n = v.numel()
    total = float(v.sum())
    if n == 0 or total == 0.0:
        return 0.0
    k = torch.arange(1, n + 1, dtype=torch.float64, device=v.device)
    return float(((2 * k - n - 1) * v).sum() / (n * total))


def complexity(importance: Tensor, pool: Pool = "pixels") -> float:
    """Entropy of the fractional contributions ``p_i = |a_i| / sum |a|`` (Bhatt et al. 2020, Sec. 4).

    ``C = -sum_i p_i ln p_i`` (``0 ln 0 = 0``). Lies in ``[0, ln N]``; lower is simpler.

    Parameters
    ----------
    importance : Tensor
        The map ``float[T, H, W]``.
    pool : {"pixels", "frames"}
        See :func:`pooled_magnitudes`.

    Returns
    -------
    float
        The entropy in nats (``ln N`` for an all-zero map).
    """
    v = pooled_magnitudes(importance, pool)
    total = float(v.sum())
    if v.numel() == 0:
        return 0.0
    if total == 0.0:
        return math.log(v.numel())
    p = v / total
    return float(-torch.special.xlogy(p, p).sum())


def effective_complexity(importance: Tensor, eps: float = 1e-5, pool: Pool = "pixels") -> int:
    """Number of values with ``|a_i| / max |a| > eps`` (Nguyen & Martinez 2020; Quantus' form).

    Parameters
    ----------
    importance : Tensor
        The map ``float[T, H, W]``.
    eps : float
        Threshold on the max-normalised magnitudes (Quantus' default ``1e-5``).
    pool : {"pixels", "frames"}
        See :func:`pooled_magnitudes`.

    Returns
    -------
    int
        The count, in ``[0, N]`` (0 for an all-zero map).
    """
    v = pooled_magnitudes(importance, pool)
    top = float(v.max()) if v.numel() else 0.0
    if top == 0.0:
        return 0
    return int(((v / top) > eps).sum())
