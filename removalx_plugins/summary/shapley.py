"""``shapley``: Kernel SHAP's constrained weighted least squares.

The summary of 3D Kernel SHAP ("removal-based video explanations", Sec. 3.6, Table 2
"Shapley value"), after Lundberg & Lee (2017, Theorem 2): minimise
``sum_z pi(z) (f(z) - phi_0 - z . phi)^2`` subject to ``phi_0 = f(empty)`` and
``sum(phi) = f(full) - f(empty)`` (efficiency). The constraint is eliminated by
substituting the last feature, and the normal equations are accumulated in a stream.
Weights come from the plan (``shapley_kernel`` selection); without plan weights the
Shapley kernel of each row's size is used (right for uniformly sampled coalitions).
With every coalition enumerated the result equals the exact Shapley values.

For adaptive sampling the plan is streamed (:class:`~removalx_plugins.machinery.streamed_pairs.PairedSizePlan`):
its first ``n_enumerated`` rows are every coalition of the smallest and largest sizes, with
weights equal to their exact share of the kernel mass; the rest are independent complement
pairs whose statistics are scaled so that together they carry the remaining mass
(``sampled_mass``): ``G = G_enumerated + c G_sampled`` with ``c = sampled_mass / sum w``
over the sampled rows (likewise for the right-hand side). The standard error
(:meth:`Shapley.estimate`) follows Covert & Lee ("Improving KernelSHAP", AISTATS 2021,
Sec. 3.3-4) for the sampled part only -- the enumerated part has no sampling error: the
covariance of the estimate is that of the mean of i.i.d. pair terms of the regression's
linearisation, ``u_k = sum_{i in pair k} w_i x_i r_i`` with ``r_i`` the residual of sample
``i`` under the estimate of the previous round (so the statistics stream in ``F x F``
memory; the first round only fits), ``Cov(head) = G^-1 (c^2 n_pairs Cov(u)) G^-1``; the last
feature's variance follows from efficiency. On an additive game the residuals vanish and so
does the standard error, as the error of paired Kernel SHAP does; with every coalition
enumerated the standard error is zero.
"""

from __future__ import annotations

import torch
from torch import Tensor

from removalx.plugin import ChunkedPlan, FeatureSpace, PluginConfig, Summary, hookimpl, shapley_kernel_weight
from removalx_plugins.machinery.wls import WeightedGram, solve_psd


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
        d = max(self.f - 1, 1)
        self.gram = WeightedGram(d)
        # a streamed plan (adaptive sampling): enumerated rows first, then the sampled part
        streamed = "sampled_mass" in plan.meta
        self.n_head = int(plan.meta.get("n_enumerated", 0)) if streamed else 0
        self.mass: float | None = float(plan.meta["sampled_mass"]) if streamed else None
        self.head_gram = WeightedGram(d)
        # adaptive sampling: pair terms of the sampled rows after the first round (module docstring)
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
        k = min(max(self.n_head - self.rows_seen, 0), int(z.shape[0]))  # rows of the enumerated head
        if k:
            self.head_gram.add(x[:k], target[:k], w[:k])
            self.rows_seen += k
            x, target, w = x[k:], target[k:], w[k:]
        if x.shape[0]:
            self.gram.add(x, target, w)
            if self.head is not None:
                self._add_terms(x, target, w)
            self.rows_seen += int(x.shape[0])

    def _add_terms(self, x: Tensor, target: Tensor, w: Tensor) -> None:
        assert self.head is not None
        # the pair statistics live on the batches' device: no copy to the host per batch
        self.head, self.pending = self.head.to(x.device), self.pending.to(x.device)
        self.su, self.suu = self.su.to(x.device), self.suu.to(x.device)
        g = x * (w * (target - x @ self.head))[:, None]  # per-row terms
        if self.paired:  # rows 2k and 2k+1 of the sampled part form one independent term
            if (self.rows_seen - self.n_head) % 2 == 1:
                g = torch.cat([self.pending[None], g])
            if g.shape[0] % 2 == 1:
                self.pending = g[-1].clone()
                g = g[:-1]
            g = g.reshape(-1, 2, g.shape[1]).sum(1)
        self.su += g.sum(0)
        self.suu += g.T @ g
        self.n_terms += int(g.shape[0])

    def _scale(self) -> float:
        """Weight of the sampled rows' statistics: their kernel mass over their weight sum."""
        if self.mass is None:
            return 1.0
        return self.mass / float(self.gram.sw) if self.gram.n and float(self.gram.sw) > 0 else 0.0

    def _normal_equations(self) -> tuple[Tensor, Tensor]:
        """``G = sum w x x^T`` and ``sum w x t`` of the regression, enumerated rows included.

        On the CPU: the grams live on the batches' device, copied once a round or at the end.
        """
        gram = self.gram.to("cpu")
        if self.mass is None:
            return gram.sxx, gram.sxy
        c = self._scale()
        head_gram = self.head_gram.to("cpu")
        return head_gram.sxx + c * gram.sxx, head_gram.sxy + c * gram.sxy

    def _values(self) -> Tensor:
        if self.f == 1:
            return torch.tensor([self.delta], dtype=torch.float64)
        head = solve_psd(*self._normal_equations())
        return torch.cat([head, (self.delta - head.sum()).reshape(1)])

    def end_round(self) -> None:
        if self.f > 1:
            self.head = solve_psd(*self._normal_equations())

    def estimate(self) -> tuple[Tensor, Tensor] | None:
        phi = self._values()
        if self.f == 1 or (self.mass == 0.0 and self.rows_seen >= self.n_head):
            return phi, torch.zeros_like(phi)  # every coalition enumerated: exact
        if self.n_terms < 2:
            return phi, torch.full_like(phi, float("inf"))
        su, suu = self.su.cpu(), self.suu.cpu()
        mean = su / self.n_terms
        cov_u = (suu - self.n_terms * torch.outer(mean, mean)) / (self.n_terms - 1)
        n_units = self.gram.n // 2 if self.paired else self.gram.n
        c = self._scale()
        ginv = torch.linalg.pinv(self._normal_equations()[0], hermitian=True)
        cov = ginv @ (c * c * n_units * cov_u) @ ginv
        ones = torch.ones(cov.shape[0], dtype=torch.float64)
        var = torch.cat([cov.diagonal(), (ones @ cov @ ones).reshape(1)])
        return phi, var.clamp_min(0.0).sqrt()

    def finalize(self, space: FeatureSpace) -> tuple[Tensor, Tensor]:
        self.meta = {"base_value": self.empty, "full_value": self.full}
        fv = self._values().float()
        return space.expand(fv), fv


@hookimpl
def removalx_register_summaries(registry):  # type: ignore[no-untyped-def]
    registry.add("shapley", ShapleyConfig, Shapley)
