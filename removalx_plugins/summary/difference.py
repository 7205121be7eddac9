"""``difference``: change of the output against a base case.

The summary of LV LOCO and LV Univariate Predictors ("removal-based video explanations",
Sec. 4.4, Table 2 "Difference with base case"): with ``base: full`` the value of feature
``i`` is ``f(full) - f(without i)`` (LOCO; also Captum's ``Occlusion`` with sliding windows),
with ``base: empty`` it is ``f(only i) - f(empty)`` (Univariate Predictors). For plans with
several samples per feature the differences are averaged.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from removalx.plugin import ChunkedPlan, FeatureSpace, PluginConfig, Summary, hookimpl


class DifferenceConfig(PluginConfig):
    """Which base case the differences are taken against."""

    base: Literal["full", "empty"] = "full"


class Difference(Summary):
    """``full``: mean of ``f(full) - y`` over samples removing i; ``empty``: mean of ``y - f(empty)`` over samples keeping i."""

    def __init__(self, config: DifferenceConfig) -> None:
        self.base_case = config.base
        self.requires = (config.base,)  # type: ignore[misc]

    def begin(self, space: FeatureSpace, plan: ChunkedPlan, base: dict[str, float]) -> None:
        self.ref = base[self.base_case]
        self.acc = torch.zeros(space.n_features, dtype=torch.float64)
        self.cnt = torch.zeros(space.n_features, dtype=torch.float64)

    def update(self, z: Tensor, keep: Tensor | None, y: Tensor, weights: Tensor | None) -> None:
        # float64 sums on the CPU, or on a CUDA device without copying each batch back (a
        # host-device sync per batch); the same operations on the CPU (docs/benchmarks.md, "GPU")
        dev = y.device if y.device.type == "cuda" else torch.device("cpu")
        z = z.to(dev, torch.float64)
        y = y.to(dev, torch.float64)
        self.acc, self.cnt = self.acc.to(dev), self.cnt.to(dev)
        if self.base_case == "full":
            sel, diff = 1.0 - z, self.ref - y
        else:
            sel, diff = z, y - self.ref
        self.acc += sel.T @ diff
        self.cnt += sel.sum(0)

    def finalize(self, space: FeatureSpace) -> tuple[Tensor, Tensor]:
        self.acc, self.cnt = self.acc.cpu(), self.cnt.cpu()
        fv = torch.where(
            self.cnt > 0, self.acc / self.cnt.clamp_min(1e-12), torch.zeros_like(self.acc)
        ).float()
        return space.expand(fv), fv


@hookimpl
def removalx_register_summaries(registry):  # type: ignore[no-untyped-def]
    registry.add("difference", DifferenceConfig, Difference)
