"""Helpers for building coalition matrices (used by feature-selection plugins)."""

from __future__ import annotations

import torch
from torch import Tensor

from removalx.errors import ConfigError

#: Largest ``F`` for which all ``2**F`` coalitions are enumerated.
MAX_ENUMERATE_FEATURES = 20


def all_coalitions(n_features: int, *, proper: bool = False) -> Tensor:
    """``float[2**F, F]`` every coalition (bit ``j`` of row ``r`` = feature ``j``).

    With ``proper=True`` the empty and the full coalition are left out.
    """
    if n_features > MAX_ENUMERATE_FEATURES:
        raise ConfigError(
            f"Enumerating all coalitions of {n_features} features means 2**{n_features} samples.",
            f"Use at most {MAX_ENUMERATE_FEATURES} features, or a fixed number of samples "
            "(sample_selection: {name: fixed, n_samples: ...}).",
        )
    rows = torch.arange(2**n_features, dtype=torch.long)
    z = ((rows[:, None] >> torch.arange(n_features)) & 1).float()
    if proper:
        z = z[1:-1]
    return z


def subsets_of_size(n_features: int, size: int) -> Tensor:
    """``float[C(F, size), F]`` every coalition of exactly ``size`` features (lexicographic)."""
    if size == 0:
        return torch.zeros(1, n_features)
    idx = torch.combinations(torch.arange(n_features), r=size)
    z = torch.zeros(idx.shape[0], n_features)
    z.scatter_(1, idx, 1.0)
    return z


def random_subsets(sizes: Tensor, n_features: int, generator: torch.Generator) -> Tensor:
    """``float[len(sizes), F]``: row ``i`` keeps a uniformly random subset of ``sizes[i]`` features."""
    scores = torch.rand(sizes.shape[0], n_features, generator=generator)
    ranks = scores.argsort(dim=1).argsort(dim=1)
    return (ranks < sizes[:, None]).float()


def first_unique_rows(z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Distinct rows of ``z`` in order of first appearance.

    Returns
    -------
    rows : Tensor
        ``[U, F]`` distinct rows.
    first : Tensor
        ``long[U]`` position of each row's first occurrence in ``z``.
    inverse : Tensor
        ``long[N]`` index into ``rows`` of every row of ``z``.
    """
    uniq, inverse = torch.unique(z, dim=0, return_inverse=True)
    n = z.shape[0]
    first = torch.full((uniq.shape[0],), n, dtype=torch.long).scatter_reduce(
        0, inverse, torch.arange(n), reduce="amin"
    )
    order = first.argsort()
    remap = torch.empty_like(order)
    remap[order] = torch.arange(order.numel())
    return uniq[order], first[order], remap[inverse]


def check_one_per_feature(name: str, n_features: int, n_samples: int | None) -> None:
    """Selectors with one sample per feature accept ``n_samples`` of ``None`` or ``F`` only."""
    if n_samples is not None and n_samples != n_features:
        raise ConfigError(
            f"{name} evaluates exactly one sample per feature ({n_features}), "
            f"but the sample selection asked for {n_samples}.",
            "Use sample_selection: {name: exhaustive} with this feature selection.",
        )


def shapley_kernel_weight(size: torch.Tensor, n_features: int) -> torch.Tensor:
    """Kernel SHAP weight of one coalition of ``size`` kept features (``inf`` for 0 and F)."""
    s = size.double()
    m = n_features
    binom = torch.exp(torch.lgamma(torch.tensor(m + 1.0)) - torch.lgamma(s + 1) - torch.lgamma(m - s + 1))
    return (m - 1) / (binom * s * (m - s))
