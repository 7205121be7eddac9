"""``cooccurrence``: occlude each tube together with its ``K`` most co-occurring tubes.

AOSA (Uchiyama et al.), Sec. 3.2: the co-occurrence of tubes ``i`` and ``x`` is the cosine
similarity of their displacement sequences (Eq. 1),
``Co(i, x) = v_i . v_x / (|v_i| |v_x|)`` with
``v_i = [p_i^(2) - p_i^(1), ..., p_i^(T) - p_i^(T-1)]``; the integrated mask of tube ``i``
occludes ``i`` and its ``K`` most co-occurring tubes (element-wise product of masks), and
one sample is drawn per tube (Eq. 2 sums over ``i = 1..N``). ``K = 0`` is AOSA_SGL.

The trajectories come from the feature space through :meth:`FeatureSelector.bind` (the
``flow_tubes`` space exposes ``trajectories float[F, T, 2]`` and ``alive bool[F, T]``).
Displacements after a tube stopped (frame-out, Sec. 3.3) count as zero. Ties, and tubes
that do not move (cosine undefined, taken as 0), are broken by the distance between the
first-frame anchors, so a static scene integrates spatial neighbours. Tubes whose whole
displacement vector is shorter than ``min_motion`` (default 0.5 px) count as static: on a
still background Farnebaeck returns sub-pixel noise whose direction is meaningless.
"""

from __future__ import annotations

import warnings

import torch
from pydantic import Field
from torch import Tensor

from removalx.coalitions import check_one_per_feature
from removalx.hookspecs import hookimpl
from removalx.stages import FeatureSelector, PluginConfig
from removalx.types import FeatureSpace, SamplePlan

__all__ = ["Cooccurrence", "CooccurrenceConfig", "cooccurrence_matrix", "top_k_partners"]


class CooccurrenceConfig(PluginConfig):
    """Number of tubes integrated with each tube."""

    k: int = Field(5, ge=0, description="K co-occurring tubes occluded with each tube (Sec. 3.2, Fig. 4: K = 5; 0 = AOSA_SGL)")
    min_motion: float = Field(
        0.5,
        ge=0,
        description="norm of the displacement vector (pixels) below which a tube is static and Eq. 1, "
        "undefined for it, is taken as 0 (not in the paper: flow noise on a still background has no direction)",
    )


def cooccurrence_matrix(trajectories: Tensor, alive: Tensor | None = None, min_motion: float = 0.5) -> Tensor:
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
        return n_features

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
        self.co = cooccurrence_matrix(traj.cpu(), None if alive is None else alive.cpu(), self.config.min_motion)
        self.partners = top_k_partners(self.co, self.config.k, traj[:, 0].cpu())

    def plan(self, n_features: int, n_samples: int | None, generator: torch.Generator) -> SamplePlan:
        check_one_per_feature("cooccurrence", n_features, n_samples)
        removed = torch.eye(n_features)
        k = 0
        if self.partners is not None and self.partners.shape[0] == n_features and self.partners.shape[1] > 0:
            removed.scatter_(1, self.partners, 1.0)
            k = int(self.partners.shape[1])
        return SamplePlan(1.0 - removed, meta={"exhaustive": True, "k": k})


@hookimpl
def removalx_register_feature_selectors(registry):  # type: ignore[no-untyped-def]
    registry.add("cooccurrence", CooccurrenceConfig, Cooccurrence)
