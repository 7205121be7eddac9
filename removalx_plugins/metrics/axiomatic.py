"""Axiomatic metrics: ``completeness`` and ``input_invariance``.

* ``completeness`` (Sundararajan et al., ICML 2017, Sec. 3, Prop. 1): the gap
  ``|sum(a) - (f(x) - f(x'))|`` between the attributions' sum and the target logit's change
  from the baseline ``x'`` (black by default). Lower is better; 2 forward passes.
* ``input_invariance`` (Kindermans et al. 2017, Sec. 3): 1 when the explanation of the clip
  shifted by ``shift`` (all frames), under a model whose first layer cancels the shift,
  equals the unshifted one to ``atol``; else 0. Higher is better. removalx explainers take
  clips in [0, 1] only, so the clip is first contracted to ``(1 - |shift|) x + max(-shift, 0)``
  and both explanations are recomputed (two re-explanations, through the context's
  ``explain``); the stored explanation is not used.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field
from torch import Tensor

from removalx.plugin import (
    Attribution,
    ConfigError,
    Metric,
    PluginConfig,
    completeness,
    hookimpl,
    input_invariance,
)


class CompletenessConfig(PluginConfig):
    """Baseline, output and tolerance of the completeness gap."""

    baseline: Literal["black", "gray", "mean", "blur"] = Field("black", description="the reference clip x'")
    blur_sigma: float = Field(
        10.0, gt=0, le=1000, description="blur of the 'blur' baseline (px); at most 1000"
    )
    output: Literal["logit", "probability"] = Field("logit", description="f: target logit or probability")
    relative: bool = Field(False, description="divide the gap by |f(x) - f(x')|")
    atol: float = Field(1e-5, ge=0, le=1e6, description="gap counted as 'passed' in the details")


class InputInvarianceConfig(PluginConfig):
    """The constant shift of every input value and the tolerance of 'unchanged'."""

    shift: float = Field(
        -0.5,
        ge=-0.95,
        le=0.95,
        description="added to every pixel of every frame of the contracted clip; 0 < |shift| < 1",
    )
    atol: float = Field(1e-4, ge=0, le=1e6, description="largest map difference counted as unchanged")


class Completeness(Metric):
    """Completeness gap (lower is better)."""

    higher_is_better = False

    def __init__(self, config: CompletenessConfig) -> None:
        self.config = config

    def score(self, model: Any, video: Tensor, attribution: Attribution, **context: Any) -> dict[str, Any]:
        settings = self.config.model_dump()
        out = completeness(model, video, attribution.importance(), attribution.target, **settings)
        out.update(higher_is_better=False, settings=settings)
        return out


class InputInvariance(Metric):
    """Input invariance under a cancelled constant shift (1 = invariant; higher is better)."""

    higher_is_better = True

    def __init__(self, config: InputInvarianceConfig) -> None:
        self.config = config

    def score(self, model: Any, video: Tensor, attribution: Attribution, **context: Any) -> dict[str, Any]:
        explain = context.get("explain")
        if explain is None:
            raise ConfigError(
                "input_invariance re-explains the shifted clip, but no 'explain' function was given.",
                "Run it through evaluate/compare (the runner supplies it), or pass "
                "explain=lambda model, video, target: explainer.explain_clip(model, video, target).",
            )
        settings = self.config.model_dump()
        if settings["shift"] == 0:
            raise ConfigError("input_invariance needs a non-zero shift, got 0.", "Use e.g. shift=-0.5.")
        out = input_invariance(explain, model, video, attribution.target, None, contract=True, **settings)
        out.update(higher_is_better=True, settings=settings)
        return out


@hookimpl
def removalx_register_metrics(registry):  # type: ignore[no-untyped-def]
    registry.add("completeness", CompletenessConfig, Completeness)
    registry.add("input_invariance", InputInvarianceConfig, InputInvariance)
