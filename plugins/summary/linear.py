"""``linear``: LIME's weighted ridge regression on the coalitions.

The summary of 3D LIME ("removal-based video explanations", Sec. 3.6, Table 2 "Linear
model"), with the defaults of LIME's image explainer: the unperturbed clip is the first
sample, the distance is the cosine distance between ``z`` and the all-ones coalition
(``1 - sqrt(|z| / F)``), the kernel is ``sqrt(exp(-d^2 / width^2))`` with width 0.25, and the
regression is ridge with ``alpha = 1`` and an unpenalised intercept. The statistics are
accumulated in a stream (memory ``F x F``, independent of the number of samples).

For adaptive sampling (:meth:`Linear.estimate`) the standard errors come from a Poisson
bootstrap over rounds: each of :data:`N_BOOTSTRAP` replicates adds every finished round
with a Poisson(1) weight (drawn from a generator of fixed seed, the same for any batch size),
and the SE of a coefficient is its standard deviation over the replicates' ridge fits
(memory ``N_BOOTSTRAP x F x F``, independent of the number of samples).
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import Tensor

from removalx.hookspecs import hookimpl
from removalx.plans import ChunkedPlan
from removalx.stages import PluginConfig, Summary
from removalx.types import FeatureSpace
from removalx.wls import WeightedGram

#: Bootstrap replicates of adaptive sampling's standard errors.
N_BOOTSTRAP = 32


class LinearConfig(PluginConfig):
    """LIME's kernel and ridge settings."""

    kernel_width: float = Field(0.25, gt=0, description="width of the exponential kernel")
    alpha: float = Field(1.0, ge=0, description="ridge penalty")
    include_original: bool = Field(True, description="add the unperturbed clip as a sample, as LIME does")
    use_plan_weights: bool = Field(False, description="multiply the kernel by the plan's sample weights")


def cosine_distance_to_full(z: Tensor) -> Tensor:
    """Cosine distance between each row of ``z`` and the all-ones coalition (1 for empty rows)."""
    n = z.shape[1]
    dot = z.sum(1)
    norm = z.norm(dim=1) * n**0.5
    sim = torch.where(norm > 0, dot / norm.clamp_min(1e-12), torch.zeros_like(dot))
    return (1.0 - sim).clamp_min(0.0)


class Linear(Summary):
    """Feature values = coefficients of LIME's local weighted ridge model."""

    def __init__(self, config: LinearConfig) -> None:
        self.config = config
        self.requires = ("full",) if config.include_original else ()  # type: ignore[misc]
        self.meta: dict[str, float] = {}

    def kernel(self, z: Tensor) -> Tensor:
        d = cosine_distance_to_full(z.double())
        return torch.sqrt(torch.exp(-(d**2) / self.config.kernel_width**2))

    def begin(self, space: FeatureSpace, plan: ChunkedPlan, base: dict[str, float]) -> None:
        self.gram = WeightedGram(space.n_features)
        if self.config.include_original:
            z = torch.ones(1, space.n_features, dtype=torch.float64)
            self.gram.add(z, torch.tensor([base["full"]]), self.kernel(z))
        self.n_features = space.n_features
        self.round: WeightedGram | None = None
        self.replicates: list[WeightedGram] = []
        self.rounds = 0
        self.base_full = base.get("full")

    def update(self, z: Tensor, keep: Tensor | None, y: Tensor, weights: Tensor | None) -> None:
        w = self.kernel(z)
        if self.config.use_plan_weights and weights is not None:
            w = w * weights.double()
        self.gram.add(z, y, w)
        if self.round is None:
            self.round = WeightedGram(self.n_features)
        self.round.add(z, y, w)

    def end_round(self) -> None:
        if self.round is None:
            return
        if not self.replicates:
            self.replicates = [WeightedGram(self.n_features) for _ in range(N_BOOTSTRAP)]
            if self.config.include_original and self.base_full is not None:
                z = torch.ones(1, self.n_features, dtype=torch.float64)
                for rep in self.replicates:
                    rep.add(z, torch.tensor([self.base_full]), self.kernel(z))
        gen = torch.Generator().manual_seed(1_000_003 + self.rounds)
        counts = torch.poisson(torch.ones(N_BOOTSTRAP, dtype=torch.float64), generator=gen)
        for rep, c in zip(self.replicates, counts.tolist()):
            if c > 0:
                rep.add_scaled(self.round, c)
        self.round = None
        self.rounds += 1

    def estimate(self) -> tuple[Tensor, Tensor] | None:
        coef = self.gram.ridge(self.config.alpha)[0]
        reps = [rep for rep in self.replicates if float(rep.sw) > 0]
        if self.rounds < 2 or len(reps) < 2:
            return coef, torch.full_like(coef, float("inf"))
        return coef, _ridge_many(reps, self.config.alpha).std(dim=0)

    def finalize(self, space: FeatureSpace) -> tuple[Tensor, Tensor]:
        coef, intercept, r2 = self.gram.ridge(self.config.alpha)
        self.meta = {"intercept": float(intercept), "r2": float(r2)}
        fv = coef.float()
        return space.expand(fv), fv


def _ridge_many(grams: list[WeightedGram], alpha: float) -> Tensor:
    """``float64[R, F]`` ridge coefficients (intercept fitted) of ``R`` replicates in one solve."""
    sw = torch.stack([g.sw for g in grams])[:, None]
    xm = torch.stack([g.sx for g in grams]) / sw
    ym = torch.stack([g.sy for g in grams])[:, None] / sw
    eye = torch.eye(xm.shape[1], dtype=torch.float64)
    a = torch.stack([g.sxx for g in grams]) - sw[:, :, None] * xm[:, :, None] * xm[:, None, :] + alpha * eye
    b = torch.stack([g.sxy for g in grams]) - sw * xm * ym
    return torch.linalg.lstsq(a, b[..., None]).solution[..., 0]


@hookimpl
def removalx_register_summaries(registry):  # type: ignore[no-untyped-def]
    registry.add("linear", LinearConfig, Linear)
