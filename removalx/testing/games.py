"""Cooperative games with known Shapley values, played by a video model.

:class:`UnanimityGameModel` reads the mean of every segment of its input clip, counts a
segment as present when its mean is at least half of the clean clip's, and returns
``v(S) = sum_T c_T [T subset of S]`` -- a sum of weighted unanimity games -- as logit 0
(logit 1 is 0). Explained with ``removal: constant 0`` and ``behavior: logit`` over the same
partition, a removal explainer sees exactly this game, through segmentation, rendering and
removal. The Shapley value of feature ``i`` is ``sum_{T containing i} c_T / |T|`` (each
unanimity game splits its worth equally among its members; Shapley values are linear).
Order ``|T| >= 3`` terms matter: paired Kernel SHAP sampling is exact on games of order
at most 2 (Covert & Lee, "Improving KernelSHAP", AISTATS 2021, Sec. 3.3).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["UnanimityGameModel", "random_unanimity_game"]


def random_unanimity_game(
    n_features: int, n_terms: int, generator: torch.Generator, max_order: int = 4
) -> tuple[list[tuple[int, ...]], Tensor]:
    """``n_terms`` random feature sets of sizes ``1 .. max_order`` and ``N(0, 1)`` weights."""
    sets: list[tuple[int, ...]] = []
    for _ in range(n_terms):
        k = int(torch.randint(1, max_order + 1, (1,), generator=generator))
        sets.append(tuple(sorted(torch.randperm(n_features, generator=generator)[:k].tolist())))
    return sets, torch.randn(n_terms, generator=generator, dtype=torch.float64)


class UnanimityGameModel(nn.Module):
    """``v(S) = sum_T c_T [T subset of S]`` over the segments of ``labels`` (layout ``BTHWC``).

    Parameters
    ----------
    labels : Tensor
        ``long[T, H, W]`` segment of every pixel (``F`` segments).
    clip : Tensor
        ``float[T, H, W, C]`` the clean clip (every segment's mean must be positive).
    sets : list of tuple of int
        The unanimity games' feature sets ``T``.
    weights : Tensor
        ``float[len(sets)]`` their weights ``c_T``.
    """

    def __init__(self, labels: Tensor, clip: Tensor, sets: list[tuple[int, ...]], weights: Tensor) -> None:
        super().__init__()
        f = int(labels.max()) + 1
        onehot = torch.zeros(labels.numel(), f, dtype=torch.float64)
        onehot[torch.arange(labels.numel()), labels.reshape(-1)] = 1.0
        self.onehot: Tensor
        self.member: Tensor
        self.weights: Tensor
        self.clean: Tensor
        self.register_buffer("onehot", onehot / onehot.sum(0))
        member = torch.zeros(len(sets), f, dtype=torch.float64)
        for t, s in enumerate(sets):
            member[t, list(s)] = 1.0
        self.register_buffer("member", member)
        self.register_buffer("weights", weights.double())
        self.register_buffer("clean", self._means(clip[None]))
        if not bool((self.clean > 0).all()):
            raise ValueError("every segment of the clean clip needs a positive mean")

    def _means(self, x: Tensor) -> Tensor:
        return x.double().mean(-1).reshape(x.shape[0], -1) @ self.onehot

    def forward(self, x: Tensor) -> Tensor:
        present = (self._means(x) >= 0.5 * self.clean).double()  # [B, F]
        # T subset of S  <=>  no member of T is absent
        hits = ((1.0 - present) @ self.member.T == 0).double()  # [B, n_terms]
        v = hits @ self.weights
        return torch.stack([v, torch.zeros_like(v)], dim=1).float()

    def shapley_values(self) -> Tensor:
        """``float64[F]`` exact Shapley values ``sum_{T containing i} c_T / |T|``."""
        return (self.member / self.member.sum(1, keepdim=True)).T @ self.weights
