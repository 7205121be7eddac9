"""``linear``: LIME's weighted ridge regression on the coalitions.

The summary of 3D LIME ("removal-based video explanations", Sec. 3.6, Table 2 "Linear
model"), with the defaults of LIME's image explainer: the unperturbed clip is the first
sample, the distance is the cosine distance between ``z`` and the all-ones coalition
(``1 - sqrt(|z| / F)``), the kernel is ``sqrt(exp(-d^2 / width^2))`` with width 0.25, and the
regression is ridge with ``alpha = 1`` and an unpenalised intercept. The statistics are
accumulated in a stream (memory ``F x F``, independent of the number of samples).

For adaptive sampling (:meth:`Linear.estimate`) the standard errors come from an online
Poisson bootstrap (Hanley & MacGibbon, "Creating non-parametric bootstrap samples using
Poisson frequencies", 2006): each of :data:`N_BOOTSTRAP` replicates adds every sample with a
Poisson(1) weight that depends only on the sample's index (counter-based, so the same for any
batch size), and the SE of a coefficient is its standard deviation over the replicates'
ridge fits (memory ``N_BOOTSTRAP x F x F``, independent of the number of samples).
"""

from __future__ import annotations

import math

import torch
from pydantic import Field
from torch import Tensor

from removalx.plugin import ChunkedPlan, FeatureSpace, PluginConfig, Summary, hash_uniform, hookimpl
from removalx_plugins.machinery.wls import WeightedGram

#: Bootstrap replicates of adaptive sampling's standard errors.
N_BOOTSTRAP = 32
#: Seed of the bootstrap's Poisson weights (a function of the sample index only).
BOOTSTRAP_SEED = 1_000_003
#: ``P(Poisson(1) <= k)`` for ``k = 0 .. 11`` (the rest of the tail, below 1e-9, counts as 12).
_POISSON1_CDF = torch.tensor(
    [sum(math.exp(-1.0) / math.factorial(j) for j in range(k + 1)) for k in range(12)], dtype=torch.float64
)


def poisson1(u: Tensor) -> Tensor:
    """Poisson(1) counts from uniforms ``u`` in ``[0, 1)`` by inversion (same shape, float64)."""
    cdf = _POISSON1_CDF.to(u.device)
    return torch.searchsorted(cdf, u.double().contiguous(), right=True).double()


class LinearConfig(PluginConfig):
    """LIME's kernel and ridge settings."""

    kernel_width: float = Field(
        0.25, gt=0, description="width of the exponential kernel; at most 100", le=100
    )
    alpha: float = Field(1.0, ge=0, description="ridge penalty; at most 1e6", le=1_000_000)
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
        self.n_features = space.n_features
        self.gram = self._with_original(base.get("full"))
        # adaptive sampling: the bootstrap replicates (only then: they cost N_BOOTSTRAP grams)
        n_rep = N_BOOTSTRAP if self.adaptive else 0
        self.replicates = [self._with_original(base.get("full")) for _ in range(n_rep)]
        self.rows_seen = 0

    def _with_original(self, full: float | None) -> WeightedGram:
        """An empty gram, holding the unperturbed clip if the configuration adds it."""
        gram = WeightedGram(self.n_features)
        if self.config.include_original and full is not None:
            z = torch.ones(1, self.n_features, dtype=torch.float64)
            gram.add(z, torch.tensor([full]), self.kernel(z))
        return gram

    def update(self, z: Tensor, keep: Tensor | None, y: Tensor, weights: Tensor | None) -> None:
        w = self.kernel(z)
        if self.config.use_plan_weights and weights is not None:
            w = w * weights.double()
        self.gram.add(z, y, w)
        if self.replicates:
            index = torch.arange(self.rows_seen, self.rows_seen + int(z.shape[0]), device=z.device)
            counts = poisson1(hash_uniform(BOOTSTRAP_SEED, index, (N_BOOTSTRAP,))).to(w)
            for r, rep in enumerate(self.replicates):
                rep.add(z, y, w * counts[:, r])
        self.rows_seen += int(z.shape[0])

    def estimate(self) -> tuple[Tensor, Tensor] | None:
        # the grams live on the batches' device (WeightedGram.add); solved on the CPU, once a round
        coef = self.gram.to("cpu").ridge(self.config.alpha)[0]
        reps = [rep.to("cpu") for rep in self.replicates]
        reps = [rep for rep in reps if float(rep.sw) > 0]
        if self.rows_seen < 2 or len(reps) < 2:
            return coef, torch.full_like(coef, float("inf"))
        return coef, _ridge_many(reps, self.config.alpha).std(dim=0)

    def finalize(self, space: FeatureSpace) -> tuple[Tensor, Tensor]:
        self.gram = self.gram.to("cpu")  # one copy from the batches' device
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
