"""``shapley``: Kernel SHAP's constrained weighted least squares.

The summary of 3D Kernel SHAP ("removal-based video explanations", Sec. 3.6, Table 2
"Shapley value"), after Lundberg & Lee (2017, Theorem 2): minimise
``sum_z pi(z) (f(z) - phi_0 - z . phi)^2`` subject to ``phi_0 = f(empty)`` and
``sum(phi) = f(full) - f(empty)`` (efficiency). The constraint is eliminated by
substituting the last feature, and the normal equations are accumulated in a stream.
Weights come from the plan (``shapley_kernel`` selection); without plan weights the
Shapley kernel of each row's size is used (right for uniformly sampled coalitions).
With every coalition enumerated the result equals the exact Shapley values.
"""

from __future__ import annotations

import torch
from torch import Tensor

from removalx.coalitions import shapley_kernel_weight
from removalx.hookspecs import hookimpl
from removalx.plans import ChunkedPlan
from removalx.stages import PluginConfig, Summary
from removalx.types import FeatureSpace
from removalx.wls import WeightedGram, solve_psd


class ShapleyConfig(PluginConfig):
    """No options."""


class Shapley(Summary):
    """Feature values = Kernel SHAP estimates of the Shapley values (efficiency holds exactly)."""

    requires = ("full", "empty")

    def __init__(self, config: ShapleyConfig) -> None:
        self.config = config
        self.meta: dict[str, float] = {}

    def begin(self, space: FeatureSpace, plan: ChunkedPlan, base: dict[str, float]) -> None:
        self.f = space.n_features
        self.full, self.empty = base["full"], base["empty"]
        self.delta = self.full - self.empty
        self.gram = WeightedGram(max(self.f - 1, 1))

    def update(self, z: Tensor, keep: Tensor | None, y: Tensor, weights: Tensor | None) -> None:
        z = z.double()
        size = z.sum(1)
        w = shapley_kernel_weight(size, self.f) if weights is None else weights.double()
        proper = (size > 0) & (size < self.f)  # empty/full rows are the constraint, not data
        w = torch.where(proper, w, torch.zeros_like(w))
        w = torch.nan_to_num(w, posinf=0.0)
        last = z[:, -1:]
        x = z[:, :-1] - last
        target = y.double() - self.empty - last[:, 0] * self.delta
        self.gram.add(x, target, w)

    def finalize(self, space: FeatureSpace) -> tuple[Tensor, Tensor]:
        if self.f == 1:
            phi = torch.tensor([self.delta], dtype=torch.float64)
        else:
            head = solve_psd(self.gram.sxx, self.gram.sxy)
            phi = torch.cat([head, (self.delta - head.sum()).reshape(1)])
        self.meta = {"base_value": self.empty, "full_value": self.full}
        fv = phi.float()
        return space.expand(fv), fv


@hookimpl
def removalx_register_summaries(registry):  # type: ignore[no-untyped-def]
    registry.add("shapley", ShapleyConfig, Shapley)
