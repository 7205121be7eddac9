"""``cooccurrence``: occlude each tube together with its ``K`` most co-occurring tubes.

AOSA (Uchiyama et al.), Sec. 3.2: the co-occurrence of tubes ``i`` and ``x`` is the cosine
similarity of their displacement sequences (Eq. 1),
``Co(i, x) = v_i . v_x / (|v_i| |v_x|)`` with
``v_i = [p_i^(2) - p_i^(1), ..., p_i^(T) - p_i^(T-1)]``; the integrated mask of tube ``i``
occludes ``i`` and its ``K`` most co-occurring tubes (element-wise product of masks), and
one sample is drawn per tube (Eq. 2 sums over ``i = 1..N``). ``K = 0`` is AOSA_SGL.
``draws: D`` evaluates every integrated mask ``D`` times (plan rows ``i * D .. i * D + D - 1``):
with a random removal (conditional sampling, Sec. 3.4) each row gets its own draw, and since
every ``aosa_map`` formula is linear in the scores, the map equals that of the score averaged
over the ``D`` draws (Sec. 3.4: "an average output score with multiple randomly sampled
values").

The trajectories come from the feature space through :meth:`FeatureSelector.bind` (the
``flow_tubes`` space exposes ``trajectories float[F, T, 2]`` and ``alive bool[F, T]``).
Displacements after a tube stopped (frame-out, Sec. 3.3) count as zero. Ties, and tubes
that do not move (cosine undefined, taken as 0), are broken by the distance between the
first-frame anchors, so a static scene integrates spatial neighbours. ``min_motion`` (a
removalx option, default 0 = Eq. 1 as printed): tubes whose whole displacement vector is
shorter count as static -- on a still background Farnebaeck returns sub-pixel noise whose
direction is meaningless, and ``min_motion: 0.5`` keeps that noise out of the integration.
"""

from __future__ import annotations

import warnings

import torch
from pydantic import Field
from torch import Tensor

from removalx.plugin import (
    ComputedPlan,
    ConfigError,
    FeatureSelector,
    FeatureSpace,
    PluginConfig,
    check_one_per_feature,
    hookimpl,
)

__all__ = ["Cooccurrence", "CooccurrenceConfig", "cooccurrence_matrix", "top_k_partners"]


class CooccurrenceConfig(PluginConfig):
    """Number of tubes integrated with each tube."""

    k: int = Field(
        5,
        ge=0,
        description="K co-occurring tubes occluded with each tube (Sec. 3.2, Fig. 4: K = 5; 0 = AOSA_SGL); at most 10,000",
        le=10_000,
        strict=True,
    )
    min_motion: float = Field(
        0.0,
        ge=0,
        description="norm of the displacement vector (pixels) below which a tube counts as static (cosine 0); "
        "0 = Eq. 1 as printed (removalx option: 0.5 ignores sub-pixel flow noise on a still background); at most 10,000",
        le=10_000,
    )
    draws: int = Field(
        1,
        ge=1,
        le=10_000,
        description="plan rows per integrated mask: with a random removal each row is one draw, and "
        "aosa_map's map is that of the score averaged over the draws (Sec. 3.4)",
        strict=True,
    )


def cooccurrence_matrix(trajectories: Tensor, alive: Tensor | None = None, min_motion: float = 0.0) -> Tensor:
    """Eq. 1 for all pairs: ``float[F, F]`` cosine similarity of displacement vectors.

    Parameters
    ----------
    trajectories : Tensor
        ``float[F, T, 2]`` anchor positions.
    alive : Tensor, optional
        ``bool[F, T]``; displacements into dead frames are zero.
    min_motion : float
        Tubes whose displacement vector is shorter get cosine 0 with every tube.
    """
    d = trajectories[:, 1:] - trajectories[:, :-1]  # [F, T-1, 2]
    if alive is not None:
        d = d * alive[:, 1:, None].to(d.dtype)
    v = d.reshape(d.shape[0], -1).double()
    norm = v.norm(dim=1)
    moving = norm > min_motion
    u = torch.where(moving[:, None], v / norm.clamp_min(1e-12)[:, None], torch.zeros_like(v))
    return (u @ u.T).float()


def top_k_partners(co: Tensor, k: int, anchors: Tensor | None = None) -> Tensor:
    """``long[F, K]``: for each tube the ``K`` others with the highest co-occurrence.

    Ties are broken by first-frame anchor distance (closest first), then by index.
    """
    n = co.shape[0]
    k = min(k, n - 1)
    if k <= 0:
        return torch.zeros(n, 0, dtype=torch.long)
    dist = torch.cdist(anchors.float(), anchors.float()) if anchors is not None else torch.zeros(n, n)
    order = dist.argsort(dim=1, stable=True)  # closest first
    co_sorted = co.gather(1, order)
    eye = torch.eye(n, dtype=torch.bool).gather(1, order)
    co_sorted = co_sorted.masked_fill(eye, float("-inf"))  # never pick itself
    rank = co_sorted.argsort(dim=1, descending=True, stable=True)[:, :k]
    return order.gather(1, rank)


class Cooccurrence(FeatureSelector):
    """Sample ``i`` removes tube ``i`` and its ``K`` most co-occurring tubes (AOSA, Sec. 3.2)."""

    def __init__(self, config: CooccurrenceConfig) -> None:
        self.config = config
        self.partners: Tensor | None = None
        self.co: Tensor | None = None

    def max_samples(self, n_features: int) -> int:
        return n_features * self.config.draws

    def bind(self, space: FeatureSpace) -> None:
        traj = getattr(space, "trajectories", None)
        self.partners = self.co = None
        if traj is None:
            if self.config.k > 0:
                warnings.warn(
                    f"cooccurrence: the {type(space).__name__} has no tube trajectories, so K = "
                    f"{self.config.k} cannot be used; each sample removes one feature (AOSA_SGL). "
                    "Use segmentation: {name: flow_tubes}.",
                    stacklevel=2,
                )
            return
        alive = getattr(space, "alive", None)
        self.co = cooccurrence_matrix(
            traj.cpu(), None if alive is None else alive.cpu(), self.config.min_motion
        )
        self.partners = top_k_partners(self.co, self.config.k, traj[:, 0].cpu())

    def plan(self, n_features: int, n_samples: int | None, generator: torch.Generator) -> ComputedPlan:
        """Row ``r`` removes tube ``r // draws`` and its partners; rows are computed when read."""
        draws = self.config.draws
        if draws == 1:
            check_one_per_feature("cooccurrence", n_features, n_samples)
        elif n_samples is not None and n_samples != n_features * draws:
            raise ConfigError(
                f"cooccurrence evaluates each of the {n_features} tubes {draws} times "
                f"({n_features * draws} samples), but the sample selection asked for {n_samples}.",
                "Use sample_selection: {name: exhaustive} with this feature selection.",
            )
        partners = self.partners
        if partners is None or partners.shape[0] != n_features or partners.shape[1] == 0:
            partners = None

        def make(index: Tensor) -> Tensor:
            tube = torch.div(index, draws, rounding_mode="floor")
            removed = torch.zeros(index.shape[0], n_features)
            removed[torch.arange(index.shape[0]), tube] = 1.0
            if partners is not None:
                removed.scatter_(1, partners[tube], 1.0)
            return 1.0 - removed

        k = 0 if partners is None else int(partners.shape[1])
        meta: dict[str, object] = {"exhaustive": True, "k": k}
        if draws > 1:
            meta["draws"] = draws
        return ComputedPlan(n_features * draws, n_features, make, meta=meta)


@hookimpl
def removalx_register_feature_selectors(registry):  # type: ignore[no-untyped-def]
    registry.add("cooccurrence", CooccurrenceConfig, Cooccurrence)
