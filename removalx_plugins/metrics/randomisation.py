"""Randomisation (sanity) metrics: ``mprt``, ``smprt``, ``emprt`` and ``random_logit``.

They re-explain the clip under a changed model or class with the method under test, which
the experiment runner passes as ``explain`` in the context (with the method's ``seed``).

* ``mprt``: model parameter randomisation test (Adebayo et al., NeurIPS 2018, Sec. 3.1);
  cascading top-down by default; value = similarity (Spearman of absolute maps) between the
  original explanation and the fully randomised model's (mean over layers when
  ``order=independent``). Lower is better. Cost: one re-explanation per layer group.
* ``smprt``: smooth MPRT (Hedström et al., "Sanity Checks Revisited", Sec. 4): explanations
  averaged over ``smooth_samples`` noisy clips. Cost: ``smooth_samples`` x (groups + 1).
* ``emprt``: efficient MPRT (same paper, Sec. 5): relative rise of the explanation's discrete
  entropy at the fully randomised model. Higher is better. Cost: one re-explanation.
* ``random_logit``: random logit test (Sixt et al., ICML 2020, Sec. 5): SSIM between the
  target's explanation and a random other class's. Lower is better. Cost: one re-explanation.
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
    emprt,
    hookimpl,
    mprt,
    random_logit,
)

Order = Literal["top_down", "bottom_up", "independent"]


def _explain_of(name: str, context: dict[str, Any]) -> Any:
    explain = context.get("explain")
    if explain is None:
        raise ConfigError(
            f"{name} re-explains the clip, but no 'explain' function was given.",
            "Run it through evaluate/compare (the runner supplies it), or pass "
            "explain=lambda model, video, target: explainer.explain_clip(model, video, target).",
        )
    return explain


def _seed(context: dict[str, Any]) -> int:
    return int(context.get("seed") or 0)


class MPRTConfig(PluginConfig):
    """Layer order and grouping, the similarity, and the smoothing of sMPRT."""

    order: Order = Field("top_down", description="cascading top_down (Adebayo), bottom_up, or independent")
    layers: Literal["groups", "all"] = Field(
        "groups", description="randomise n_groups contiguous groups of layers, or every layer in turn"
    )
    n_groups: int = Field(5, ge=1, le=1000, strict=True, description="groups when layers=groups")
    similarity: Literal["spearman", "pearson", "ssim"] = Field("spearman", description="map similarity")
    absolute: bool = Field(True, description="compare absolute maps (Adebayo's 'absolute value' variant)")
    smooth_samples: int = Field(
        1, ge=1, le=10000, strict=True, description="noisy copies averaged per explanation (1: plain MPRT)"
    )
    noise_magnitude: float = Field(
        0.1, ge=0, le=10, description="noise std as a fraction of the clip's value range (sMPRT)"
    )


class SMPRTConfig(MPRTConfig):
    """sMPRT's defaults (Hedström et al. Sec. 4; Quantus SmoothMPRT): bottom-up, 50 samples."""

    order: Order = Field(
        "bottom_up", description="cascading bottom_up (sMPRT default), top_down, independent"
    )
    smooth_samples: int = Field(50, ge=1, le=10000, strict=True, description="noisy copies per explanation")


class EMPRTConfig(PluginConfig):
    """Layer order and grouping, and the histogram bins of the entropy."""

    order: Order = Field("bottom_up", description="cascade order to the fully randomised model")
    layers: Literal["groups", "all"] = Field("groups", description="unit of randomisation")
    n_groups: int = Field(5, ge=1, le=1000, strict=True, description="groups when layers=groups")
    n_bins: int = Field(100, ge=2, le=100000, strict=True, description="histogram bins of the entropy")


class RandomLogitConfig(PluginConfig):
    """The similarity of the two classes' maps."""

    similarity: Literal["ssim", "spearman", "pearson"] = Field("ssim", description="map similarity")
    absolute: bool = Field(False, description="compare absolute maps")


class _ReExplaining(Metric):
    """A randomisation metric: ``function(explain, model, video, target, importance, seed=...)``."""

    name = ""
    higher_is_better = False

    def __init__(self, config: PluginConfig) -> None:
        self.config = config

    @staticmethod
    def function(*args: Any, **kwargs: Any) -> dict[str, Any]:  # pragma: no cover - overridden
        raise NotImplementedError

    def score(self, model: Any, video: Tensor, attribution: Attribution, **context: Any) -> dict[str, Any]:
        explain = _explain_of(self.name, context)
        settings = self.config.model_dump()
        out = type(self).function(
            explain,
            model,
            video,
            attribution.target,
            attribution.importance(),
            seed=_seed(context),
            **settings,
        )
        out.update(higher_is_better=self.higher_is_better, settings=settings)
        return out


class MPRT(_ReExplaining):
    """MPRT / sMPRT: similarity to the randomised model's explanation (lower is better)."""

    higher_is_better = False
    name = "mprt"
    function = staticmethod(mprt)


class SMPRT(MPRT):
    """sMPRT: MPRT on noise-averaged explanations (lower is better)."""

    name = "smprt"


class EMPRT(_ReExplaining):
    """eMPRT: relative entropy rise under full randomisation (higher is better)."""

    higher_is_better = True
    name = "emprt"
    function = staticmethod(emprt)


class RandomLogit(_ReExplaining):
    """Random logit test: similarity to another class's explanation (lower is better)."""

    higher_is_better = False
    name = "random_logit"
    function = staticmethod(random_logit)


@hookimpl
def removalx_register_metrics(registry):  # type: ignore[no-untyped-def]
    registry.add("mprt", MPRTConfig, MPRT)
    registry.add("smprt", SMPRTConfig, SMPRT)
    registry.add("emprt", EMPRTConfig, EMPRT)
    registry.add("random_logit", RandomLogitConfig, RandomLogit)
