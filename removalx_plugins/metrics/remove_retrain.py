"""``kar`` and ``roar``: keep / remove the top pixels of every map, retrain, test (dataset-level).

Hooker et al., "A benchmark for interpretability methods in deep neural networks" (NeurIPS
2019), Sec. 3; the STEP journal paper, Sec. IV-C and Fig. 8 (KAR on clips). Unlike the other
metrics these score a method over a whole data set, not one explanation: ``removalx
evaluate/compare/ablate`` explain the training clips too, retrain the model's architecture
once per method and fraction, and store one test accuracy per point of the curve
(:mod:`removalx.experiments.retrain`). The random map is drawn as the reference line.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator
from torch import Tensor

from removalx.plugin import Attribution, ConfigError, Metric, PluginConfig, hookimpl

__all__ = ["RemoveRetrain", "RemoveRetrainConfig"]

#: STEP journal Sec. IV-C: "perturbing samples at the ratios of {0.05, 0.1, 0.3, 0.5, 0.7, 0.9}".
STEP_FRACTIONS = (0.05, 0.1, 0.3, 0.5, 0.7, 0.9)


class RemoveRetrainConfig(PluginConfig):
    """Fractions, training set and training budget of a remove-and-retrain curve."""

    fractions: tuple[float, ...] = Field(
        STEP_FRACTIONS,
        min_length=1,
        description="shares k of pixels kept (kar) or removed (roar) (STEP journal Sec. IV-C)",
    )
    n_train: int = Field(
        200,
        ge=2,
        description="training clips (explained by each method, then modified); at most 1e6",
        le=1_000_000,
        strict=True,
    )
    train_data: str = Field(
        "auto",
        description="training clips: 'auto' = the same synthetic generator as the evaluated data set "
        "at seeds disjoint from it; else a folder data set with labels",
    )
    train_seed: int = Field(
        10_000_000,
        ge=0,
        description="first generator seed of the 'auto' training clips; at most 2**63 - 1",
        le=2**63 - 1,
        strict=True,
    )
    architecture: str | None = Field(
        None, description="zoo architecture retrained from scratch (default: the evaluated zoo model's)"
    )
    epochs: int | None = Field(
        None,
        ge=1,
        description="training epochs (default: the architecture's); at most 1000",
        le=1000,
        strict=True,
    )
    repeats: int = Field(
        1,
        ge=1,
        description="independent retrainings per point, accuracies averaged (Hooker et al.: 5); at most 100",
        le=100,
        strict=True,
    )
    seed: int = Field(
        0,
        description="seed of the retrainings (repeat r uses seed + r); in [0, 2**62]",
        ge=0,
        le=2**62,
        strict=True,
    )

    @field_validator("fractions")
    @classmethod
    def _in_unit(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if any(not 0.0 <= f <= 1.0 for f in v):
            raise ValueError("every fraction must be in [0, 1]")
        return tuple(sorted(set(v)))


class RemoveRetrain(Metric):
    """A dataset-level metric: :mod:`removalx.experiments.retrain` computes it, not :meth:`score`."""

    dataset_level = True

    def __init__(self, config: RemoveRetrainConfig, mode: Literal["kar", "roar"]) -> None:
        self.config = config
        self.mode = mode
        self.higher_is_better = mode == "kar"

    def score(self, model: Any, video: Tensor, attribution: Attribution, **context: Any) -> dict[str, Any]:
        raise ConfigError(
            f"{self.mode} scores a method over a data set (it retrains the model), not one explanation.",
            f"Use it through `removalx evaluate/compare --metrics {self.mode}`.",
        )


def _kar(config: RemoveRetrainConfig) -> RemoveRetrain:
    return RemoveRetrain(config, "kar")


def _roar(config: RemoveRetrainConfig) -> RemoveRetrain:
    return RemoveRetrain(config, "roar")


@hookimpl
def removalx_register_metrics(registry):  # type: ignore[no-untyped-def]
    registry.add("kar", RemoveRetrainConfig, _kar)
    registry.add("roar", RemoveRetrainConfig, _roar)
