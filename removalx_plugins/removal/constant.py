"""``constant``: fill removed pixels with one colour (black by default).

"removal-based video explanations" (Sec. 3.4): black (RISE, all six recipes of Table 2)
or gray (occlusion sensitivity, ``value: 0.5``).
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import Tensor

from removalx.plugin import ConfigError, FeatureSpace, PluginConfig, Removal, hookimpl


class ConstantConfig(PluginConfig):
    """Fill value in [0, 1]: one gray level or one value per channel."""

    value: float | tuple[float, ...] = Field(0.0, description="0 = black, 0.5 = gray, or [r, g, b]")


class Constant(Removal):
    """``fill = value`` everywhere."""

    def __init__(self, config: ConstantConfig) -> None:
        v = config.value
        self.value = (v,) if isinstance(v, (int, float)) else tuple(v)
        if any(not 0.0 <= x <= 1.0 for x in self.value):
            raise ConfigError(f"constant removal value must be in [0, 1], got {config.value}.")
        self._fill: Tensor | None = None

    def prepare(self, video: Tensor, space: FeatureSpace, seed: int) -> None:
        c = video.shape[-1]
        if len(self.value) not in (1, c):
            raise ConfigError(
                f"constant removal value has {len(self.value)} entries for a {c}-channel clip.",
                "Give one value or one per channel.",
            )
        self._fill = torch.tensor(self.value, dtype=video.dtype, device=video.device).expand(c)

    def fill(self, video: Tensor, keep: Tensor, index: Tensor) -> Tensor:
        if self._fill is None or self._fill.device != video.device:
            self.prepare(video, None, 0)  # type: ignore[arg-type]
        return self._fill  # type: ignore[return-value]


@hookimpl
def removalx_register_removals(registry):  # type: ignore[no-untyped-def]
    registry.add("constant", ConstantConfig, Constant)
