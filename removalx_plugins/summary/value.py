"""``value``: the model's output with the feature removed.

The summary of 3D Sampled Occlusion Sensitivity ("removal-based video explanations",
Sec. 4.4, Table 2 "Prediction of the model when occluded"): *low* values mark important
features (the paper shows them as cold regions), so the attribution carries
``meta["lower_is_important"] = True`` and metrics and visualizers flip it.
"""

from __future__ import annotations

import torch
from torch import Tensor

from removalx.plugin import ChunkedPlan, FeatureSpace, PluginConfig, Summary, hookimpl


class ValueConfig(PluginConfig):
    """No options."""


class Value(Summary):
    """Feature value = mean output over the samples that remove the feature."""

    lower_is_important = True
    requires = ("full",)

    def __init__(self, config: ValueConfig) -> None:
        self.config = config

    def begin(self, space: FeatureSpace, plan: ChunkedPlan, base: dict[str, float]) -> None:
        self.full = base["full"]
        self.acc = torch.zeros(space.n_features, dtype=torch.float64)
        self.cnt = torch.zeros(space.n_features, dtype=torch.float64)

    def update(self, z: Tensor, keep: Tensor | None, y: Tensor, weights: Tensor | None) -> None:
        # float64 sums on the CPU, or on a CUDA device without copying each batch back (a
        # host-device sync per batch); the same operations on the CPU (docs/benchmarks.md, "GPU")
        dev = y.device if y.device.type == "cuda" else torch.device("cpu")
        self.acc, self.cnt = self.acc.to(dev), self.cnt.to(dev)
        removed = 1.0 - z.to(dev, torch.float64)
        self.acc += removed.T @ y.to(dev, torch.float64)
        self.cnt += removed.sum(0)

    def finalize(self, space: FeatureSpace) -> tuple[Tensor, Tensor]:
        self.acc, self.cnt = self.acc.cpu(), self.cnt.cpu()
        fv = torch.where(
            self.cnt > 0, self.acc / self.cnt.clamp_min(1e-12), torch.full_like(self.acc, self.full)
        )
        return space.expand(fv.float()), fv.float()


@hookimpl
def removalx_register_summaries(registry):  # type: ignore[no-untyped-def]
    registry.add("value", ValueConfig, Value)
