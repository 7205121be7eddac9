"""``constant``: fill removed pixels with one colour (black by default).

"removal-based video explanations" (Sec. 3.4): black (RISE, all six recipes of Table 2)
or gray (occlusion sensitivity, ``value: 0.5``).

``value: model_mean`` fills the model's normalisation mean (``VideoClassifier(..., mean=...)``),
the colour whose *normalised* input is zero: it is what a method that zeroes the network's
normalised input removes to (AOSA's released code multiplies the normalised clip by the 0/1
mask, Eq. 2). The pipeline resolves it when it binds the model (:meth:`Constant.bind_model`);
a model without a normalisation mean feeds the clip itself to the network, so zeroing its
input is black (0.0) -- and so is ``model_mean`` before any model is bound (removalx's choice,
e.g. in :func:`removalx.testing.check_plugin`).
"""

from __future__ import annotations

from typing import Annotated, Literal

import torch
from pydantic import Field
from torch import Tensor

from removalx.plugin import ConfigError, FeatureSpace, PluginConfig, Removal, VideoClassifier, hookimpl

#: The ``value`` that stands for the model's normalisation mean.
MODEL_MEAN = "model_mean"


#: A pixel level of the [0, 1] clips.
_Level = Annotated[float, Field(ge=0.0, le=1.0)]


class ConstantConfig(PluginConfig):
    """Fill value in [0, 1]: one gray level, one value per channel, or the model's normalisation mean."""

    value: _Level | tuple[_Level, ...] | Literal["model_mean"] = Field(
        0.0,
        description="0 = black, 0.5 = gray, [r, g, b], or model_mean (the model's normalisation mean: "
        "zero in the normalised input; black for a model without one)",
    )


def model_mean(model: VideoClassifier | None) -> tuple[float, ...]:
    """The pixel colour whose normalised input is zero: ``model.mean``, or ``(0.0,)`` without one.

    ``VideoClassifier`` feeds ``(x - mean) / std`` to the network, which is zero at
    ``x = mean`` whatever ``std``; without a ``mean`` it feeds ``x / std`` (or ``x``), zero at
    black. ``None`` (no model bound) gives black too.
    """
    mean = None if model is None else getattr(model, "mean", None)
    if mean is None:
        return (0.0,)
    return tuple(float(v) for v in torch.as_tensor(mean).detach().reshape(-1).cpu().tolist())


class Constant(Removal):
    """``fill = value`` everywhere (``model_mean``: the bound model's normalisation mean)."""

    def __init__(self, config: ConstantConfig) -> None:
        v = config.value
        self.follows_model = v == MODEL_MEAN
        if isinstance(v, str):
            if not self.follows_model:  # pragma: no cover - the config's Literal rejects it first
                raise ConfigError(f"Unknown constant value {v[:40]!r}.", f"Use a number or {MODEL_MEAN!r}.")
            self.value: tuple[float, ...] = model_mean(None)
        else:
            self.value = (v,) if isinstance(v, (int, float)) else tuple(v)
            if any(not 0.0 <= x <= 1.0 for x in self.value):
                raise ConfigError(f"constant removal value must be in [0, 1], got {config.value}.")
        self._fill: Tensor | None = None

    def bind_model(self, model: VideoClassifier) -> None:
        """Resolve ``value: model_mean`` to ``model.mean`` (black for a model without one)."""
        if not self.follows_model:
            return
        value = model_mean(model)
        if any(not 0.0 <= x <= 1.0 for x in value):
            raise ConfigError(
                f"constant removal value: model_mean is the model's normalisation mean "
                f"{[round(x, 4) for x in value[:8]]}, outside the pixel range [0, 1] of the clips.",
                "Give the model's mean in [0, 1] units (VideoClassifier(..., mean=[0.43, 0.39, 0.38])), "
                "or set removal.value to a colour in [0, 1].",
            )
        self.value = value
        self._fill = None

    def prepare(self, video: Tensor, space: FeatureSpace, seed: int) -> None:
        c = video.shape[-1]
        if len(self.value) not in (1, c):
            source = "the model's normalisation mean" if self.follows_model else "constant removal value"
            raise ConfigError(
                f"{source} has {len(self.value)} entries for a {c}-channel clip.",
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
