"""``shapley``: Kernel SHAP's constrained weighted least squares.

The summary of 3D Kernel SHAP ("removal-based video explanations", Sec. 3.6, Table 2
"Shapley value"), after Lundberg & Lee (2017, Theorem 2): minimise
``sum_z pi(z) (f(z) - phi_0 - z . phi)^2`` subject to ``phi_0 = f(empty)`` and
``sum(phi) = f(full) - f(empty)`` (efficiency). The constraint is eliminated by
substituting the last feature, and the normal equations are accumulated in a stream.
Weights come from the plan (``shapley_kernel`` selection); without plan weights the
Shapley kernel of each row's size is used (right for uniformly sampled coalitions).
With every coalition enumerated the result equals the exact Shapley values.

For adaptive sampling (:meth:`Shapley.estimate`), the standard error follows Covert & Lee
("Improving KernelSHAP", AISTATS 2021, Sec. 3.3-4): the samples are independent complement
pairs, and the covariance of the estimate is that of the mean of i.i.d. pair terms. The
terms are those of the regression's linearisation, ``u_k = sum_{i in pair k} w_i x_i r_i``
with ``r_i`` the residual of sample ``i`` under the estimate of the previous round (so the
statistics stream in ``F x F`` memory; the first round only fits), and
``Cov(head) = G^-1 (n_pairs Cov(u)) G^-1`` with ``G = sum w x x^T``; the last feature's
variance follows from efficiency. On an additive game the residuals vanish and so does the
standard error, as the error of paired Kernel SHAP does.
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
        # adaptive sampling: pair terms of the rounds after the first (see the module docstring)
        d = max(self.f - 1, 1)
        self.paired = bool(plan.meta.get("paired", False))
        self.head: Tensor | None = None
        self.pending = torch.zeros(d, dtype=torch.float64)
        self.rows_seen = 0
        self.su = torch.zeros(d, dtype=torch.float64)
        self.suu = torch.zeros(d, d, dtype=torch.float64)
        self.n_terms = 0

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
        if self.head is not None:
            self._add_terms(x.cpu(), target.cpu(), w.cpu())
        self.rows_seen += int(z.shape[0])

    def _add_terms(self, x: Tensor, target: Tensor, w: Tensor) -> None:
        assert self.head is not None
        g = x * (w * (target - x @ self.head))[:, None]  # per-row terms
        if self.paired:  # rows 2k and 2k+1 of the plan form one independent term
            if self.rows_seen % 2 == 1:
                g = torch.cat([self.pending[None], g])
            if g.shape[0] % 2 == 1:
                self.pending = g[-1].clone()
                g = g[:-1]
            g = g.reshape(-1, 2, g.shape[1]).sum(1)
        self.su += g.sum(0)
        self.suu += g.T @ g
        self.n_terms += int(g.shape[0])

    def end_round(self) -> None:
        if self.f > 1:
            self.head = solve_psd(self.gram.sxx, self.gram.sxy)

    def estimate(self) -> tuple[Tensor, Tensor] | None:
        if self.f == 1:
            return torch.tensor([self.delta], dtype=torch.float64), torch.zeros(1, dtype=torch.float64)
        head = solve_psd(self.gram.sxx, self.gram.sxy)
        phi = torch.cat([head, (self.delta - head.sum()).reshape(1)])
        if self.n_terms < 2:
            return phi, torch.full_like(phi, float("inf"))
        mean = self.su / self.n_terms
        cov_u = (self.suu - self.n_terms * torch.outer(mean, mean)) / (self.n_terms - 1)
        n_units = self.gram.n // 2 if self.paired else self.gram.n
        ginv = torch.linalg.pinv(self.gram.sxx, hermitian=True)
        cov = ginv @ (n_units * cov_u) @ ginv
        ones = torch.ones(cov.shape[0], dtype=torch.float64)
        var = torch.cat([cov.diagonal(), (ones @ cov @ ones).reshape(1)])
        return phi, var.clamp_min(0.0).sqrt()

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
