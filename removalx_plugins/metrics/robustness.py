"""Robustness metrics: ``max_sensitivity``, ``avg_sensitivity``, ``local_lipschitz``, ``ris``, ``ros``.

How much a method's map moves when the clip changes a little (lower is more robust). Each
re-explains perturbed clips with the context's ``explain(model, video, target)`` (supplied by
the experiment runner: the same method re-run, seeded identically), so it costs one
explanation per perturbed clip plus one batched forward pass over them.

- ``max_sensitivity`` / ``avg_sensitivity``: Yeh et al., NeurIPS 2019, Sec. 3 (Def. 3.1 and
  the average form); uniform noise in the L-inf ball of radius 0.2, 50 samples (the authors'
  released settings), ratio to ``||Phi(x)||`` (their code).
- ``local_lipschitz``: Alvarez-Melis & Jaakkola 2018, Sec. 3, Eq. 5; Gaussian noise of std 0.1
  (Quantus' setting; the paper leaves the sampling open).
- ``ris`` / ``ros``: Agarwal et al. 2022, Sec. 3.3, Eqs. 2 and 4; perturbations that change
  the predicted class are dropped, as in the paper.

``perturbation: frame_shift | frame_rate`` (sensitivities and ``ros``) are removalx's temporal
extensions: one-frame shifts (rolled, the map rolled back before comparing) and half the frame
rate (every other frame, compared at the matching frames). See
:mod:`removalx.metrics.robustness`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field
from torch import Tensor

from removalx.plugin import Attribution, ConfigError, Metric, PluginConfig, explanation_robustness, hookimpl

_N_HELP = "perturbed clips (one re-explanation each) of perturbation=noise; at most 10000"
_TEMPORAL = Literal["noise", "frame_shift", "frame_rate"]


class _RobustnessConfig(PluginConfig):
    """Settings every robustness measure shares."""

    n_samples: int = Field(50, ge=1, le=10_000, strict=True, description=_N_HELP)
    clip: bool = Field(True, description="clip perturbed clips to [0, 1] (the range models accept)")
    eps_min: float = Field(
        1e-6, gt=0, le=1, description="zero guard of the ratios (Agarwal et al.'s eps_min)"
    )
    seed: int | None = Field(
        None,
        ge=0,
        le=2**62,
        strict=True,
        description="noise seed; default: the method's seed from the context",
    )
    batch_size: int = Field(16, ge=1, le=4096, strict=True, description="perturbed clips per forward pass")


class SensitivityConfig(_RobustnessConfig):
    """Max- / avg-sensitivity (Yeh et al. 2019): uniform L-inf noise, radius 0.2, 50 samples."""

    perturbation: _TEMPORAL = Field("noise", description="noise, or removalx's frame_shift / frame_rate")
    radius: float = Field(
        0.2, gt=0, le=1, description="L-inf radius (uniform) or std (gaussian) of the noise"
    )
    noise: Literal["uniform", "gaussian"] = "uniform"
    relative: bool = Field(True, description="divide ||Phi(x) - Phi(x')|| by ||Phi(x)|| (the authors' code)")
    keep_prediction: bool = Field(False, description="drop perturbations that change the predicted class")


class LipschitzConfig(_RobustnessConfig):
    """Local Lipschitz estimate (Alvarez-Melis & Jaakkola 2018): Gaussian noise, std 0.1."""

    perturbation: Literal["noise"] = Field(
        "noise", description="input noise only (the ratio divides by ||x - x'||)"
    )
    radius: float = Field(
        0.1, gt=0, le=1, description="std (gaussian) or L-inf radius (uniform) of the noise"
    )
    noise: Literal["uniform", "gaussian"] = "gaussian"
    keep_prediction: bool = Field(False, description="drop perturbations that change the predicted class")


class RISConfig(_RobustnessConfig):
    """Relative input stability (Agarwal et al. 2022): same-class perturbations only."""

    perturbation: Literal["noise"] = Field(
        "noise", description="input noise only (the ratio divides by the input change)"
    )
    radius: float = Field(
        0.05, gt=0, le=1, description="L-inf radius (uniform) or std (gaussian) of the noise"
    )
    noise: Literal["uniform", "gaussian"] = "uniform"
    keep_prediction: bool = Field(
        True, description="drop perturbations that change the predicted class (paper)"
    )


class ROSConfig(_RobustnessConfig):
    """Relative output stability (Agarwal et al. 2022): same-class perturbations only."""

    perturbation: _TEMPORAL = Field("noise", description="noise, or removalx's frame_shift / frame_rate")
    radius: float = Field(
        0.05, gt=0, le=1, description="L-inf radius (uniform) or std (gaussian) of the noise"
    )
    noise: Literal["uniform", "gaussian"] = "uniform"
    keep_prediction: bool = Field(
        True, description="drop perturbations that change the predicted class (paper)"
    )


class _Robustness(Metric):
    """One robustness measure; ``measure`` names it (lower is more robust)."""

    higher_is_better = False
    measure = "max_sensitivity"

    def __init__(self, config: _RobustnessConfig) -> None:
        self.config = config

    def score(self, model: Any, video: Tensor, attribution: Attribution, **context: Any) -> dict[str, Any]:
        explain = context.get("explain")
        if explain is None:
            raise ConfigError(
                f"{self.measure} re-explains perturbed clips, but the context has no 'explain'.",
                "Run it through evaluate/compare (the runner supplies it), or pass "
                "explain=lambda model, video, target: explainer.explain_clip(model, video, target).",
            )
        cfg = self.config.model_dump()
        seed = cfg.pop("seed")
        seed = int(context.get("seed") or 0) if seed is None else seed
        batch_size = cfg.pop("batch_size")
        out = explanation_robustness(
            model,
            video,
            attribution.importance(),
            int(attribution.target),
            explain,
            measure=self.measure,  # type: ignore[arg-type]
            seed=seed,
            batch_size=batch_size,
            **cfg,
        )
        settings = {k: v for k, v in self.config.model_dump().items() if k != "batch_size"}
        out.update(higher_is_better=False, preset=None, measure=self.measure, settings=settings)
        return out


class MaxSensitivity(_Robustness):
    """Max over perturbations of ``||Phi(x) - Phi(x')|| / ||Phi(x)||``."""

    measure = "max_sensitivity"


class AvgSensitivity(_Robustness):
    """Mean over perturbations of ``||Phi(x) - Phi(x')|| / ||Phi(x)||``."""

    measure = "avg_sensitivity"


class LocalLipschitz(_Robustness):
    """Max over perturbations of ``||Phi(x) - Phi(x')|| / ||x - x'||``."""

    measure = "local_lipschitz"


class RIS(_Robustness):
    """Relative input stability (max over same-class perturbations)."""

    measure = "ris"


class ROS(_Robustness):
    """Relative output stability (max over same-class perturbations)."""

    measure = "ros"


@hookimpl
def removalx_register_metrics(registry):  # type: ignore[no-untyped-def]
    registry.add("max_sensitivity", SensitivityConfig, MaxSensitivity)
    registry.add("avg_sensitivity", SensitivityConfig, AvgSensitivity)
    registry.add("local_lipschitz", LipschitzConfig, LocalLipschitz)
    registry.add("ris", RISConfig, RIS)
    registry.add("ros", ROSConfig, ROS)
