"""``faithfulness_correlation``, ``sensitivity_n``, ``infidelity``, ``irof``: faithfulness without retraining.

Bhatt et al. (IJCAI 2020) Sec. 3, Ancona et al. (ICLR 2018) Sec. 3.3, Yeh et al. (NeurIPS
2019) Def. 2.1 and Rieger & Hansen (ICLR-W 2020) Sec. 3; the computations live in
:mod:`removalx.metrics.faithfulness` (see there and docs/fidelity.md for every default).
Features may be pixels or ranking units (patches, per-frame superpixels, 3D supervoxels).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator
from torch import Tensor

from removalx.plugin import (
    Attribution,
    Metric,
    PluginConfig,
    faithfulness_correlation,
    hookimpl,
    infidelity,
    irof,
    sensitivity_n,
)

Fill = Literal["black", "blur", "gray", "mean", "dataset_mean"]
FILL_HELP = "what removed features show: black, blur, gray (0.5), mean (clip mean), dataset_mean"


class _Common(PluginConfig):
    """Settings shared by the four metrics: substrate, output, batching, seed."""

    fill: Fill = Field("black", description=FILL_HELP)
    fill_value: tuple[float, ...] | None = Field(
        None, description="per-channel colour of fill dataset_mean (default: the model's mean)"
    )
    blur_sigma: float = Field(10.0, gt=0, le=1000, description="sigma (px) of the blur fill; at most 1000")
    behavior: Literal["probability", "logit"] = Field(
        "logit", description="score compared: logit or probability"
    )
    batch_size: int = Field(
        32, ge=1, le=4096, strict=True, description="clips per forward pass; at most 4096"
    )
    seed: int = Field(0, ge=0, le=2**63 - 1, strict=True, description="seed of the random draws")

    @field_validator("fill_value")
    @classmethod
    def _unit(cls, v: tuple[float, ...] | None) -> tuple[float, ...] | None:
        if v is not None and any(not 0.0 <= c <= 1.0 for c in v):
            raise ValueError("every fill_value channel must be in [0, 1]")
        return v


class _Units(_Common):
    unit: Literal["pixel", "patch", "superpixel", "supervoxel"] = Field(
        "pixel", description="feature: pixel, patch, superpixel (2D SLIC per frame) or supervoxel (3D SLIC)"
    )
    patch: int = Field(7, ge=1, le=4096, strict=True, description="patch side (px) of the patch unit")
    superpixels: int = Field(
        256, ge=1, le=100_000, strict=True, description="SLIC segments per frame (superpixel / supervoxel)"
    )


class FaithfulnessCorrelationConfig(_Units):
    """Bhatt et al.'s subset size and number of runs (Quantus defaults: 224, 100)."""

    subset_size: int = Field(224, ge=1, le=10_000_000, strict=True, description="|S|, features per subset")
    n_runs: int = Field(100, ge=2, le=100_000, strict=True, description="random subsets drawn")


class SensitivityNConfig(_Units):
    """Subset sizes (as shares of the features) and subsets per size."""

    fractions: tuple[float, ...] = Field(
        (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.8),
        min_length=1,
        description="subset sizes n as shares of the features, each in (0, 1]",
    )
    n_subsets: int = Field(
        100, ge=2, le=100_000, strict=True, description="random subsets per n (paper: 100)"
    )

    @field_validator("fractions")
    @classmethod
    def _shares(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if any(not 0.0 < f <= 1.0 for f in v):
            raise ValueError("every fraction must be in (0, 1]")
        return tuple(sorted(set(v)))


class InfidelityConfig(_Common):
    """Perturbation distribution, samples and optimal scaling (Yeh et al. released code)."""

    perturbation: Literal["gaussian", "square"] = Field(
        "gaussian", description="gaussian: noisy baseline; square: random square tubes removed"
    )
    n_samples: int = Field(1000, ge=2, le=1_000_000, strict=True, description="perturbations drawn")
    noise_std: float = Field(0.2, gt=0, le=10, description="std of the noisy baseline (released code: 0.2)")
    square_max: int = Field(10, ge=1, le=4096, strict=True, description="largest square side (px)")
    scale: bool = Field(True, description="optimally scale the explanation first (released code)")


class IrofConfig(_Units):
    """Segments and fill of IROF (mean colour, class probability)."""

    unit: Literal["pixel", "patch", "superpixel", "supervoxel"] = Field(
        "supervoxel", description="segments removed: supervoxel (3D SLIC), superpixel, patch or pixel"
    )
    superpixels: int = Field(
        100, ge=1, le=100_000, strict=True, description="SLIC segments per frame (skimage default: 100)"
    )
    fill: Fill = Field("mean", description=FILL_HELP)
    behavior: Literal["probability", "logit"] = Field("probability", description="class score: probability")


def _result(
    out: dict[str, Any], cfg: PluginConfig, higher: bool, value_range: list[float] | None
) -> dict[str, Any]:
    out = {k: v for k, v in out.items() if k not in ("att_sums", "drops")}
    out.update(higher_is_better=higher, preset=None, settings=cfg.model_dump())
    if value_range is not None:
        out["value_range"] = value_range
    return out


class _Base(Metric):
    def __init__(self, config: Any) -> None:
        self.config = config

    def _args(self) -> dict[str, Any]:
        return self.config.model_dump()


class FaithfulnessCorrelation(_Base):
    """Pearson correlation of subset attribution sums and output drops, in [-1, 1] (higher is better)."""

    higher_is_better = True

    def score(self, model: Any, video: Tensor, attribution: Attribution, **context: Any) -> dict[str, Any]:
        out = faithfulness_correlation(
            model, video, attribution.importance(), attribution.target, **self._args()
        )
        return _result(out, self.config, True, [-1.0, 1.0])


class SensitivityN(_Base):
    """Mean over n of the sensitivity-n correlations, in [-1, 1] (higher is better)."""

    higher_is_better = True

    def score(self, model: Any, video: Tensor, attribution: Attribution, **context: Any) -> dict[str, Any]:
        out = sensitivity_n(model, video, attribution.importance(), attribution.target, **self._args())
        return _result(out, self.config, True, [-1.0, 1.0])


class Infidelity(_Base):
    """Expected squared error of ``I^T Phi`` against the output change, >= 0 (lower is better)."""

    higher_is_better = False

    def score(self, model: Any, video: Tensor, attribution: Attribution, **context: Any) -> dict[str, Any]:
        args = {k: v for k, v in self._args().items()}
        out = infidelity(model, video, attribution.importance(), attribution.target, **args)
        return _result(out, self.config, False, None)


class Irof(_Base):
    """Area over the normalised class-score curve of segment removal, <= 1 (higher is better)."""

    higher_is_better = True

    def score(self, model: Any, video: Tensor, attribution: Attribution, **context: Any) -> dict[str, Any]:
        out = irof(model, video, attribution.importance(), attribution.target, **self._args())
        return _result(out, self.config, True, None)


@hookimpl
def removalx_register_metrics(registry):  # type: ignore[no-untyped-def]
    registry.add("faithfulness_correlation", FaithfulnessCorrelationConfig, FaithfulnessCorrelation)
    registry.add("sensitivity_n", SensitivityNConfig, SensitivityN)
    registry.add("infidelity", InfidelityConfig, Infidelity)
    registry.add("irof", IrofConfig, Irof)
