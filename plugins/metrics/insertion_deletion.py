"""``deletion`` and ``insertion``: AUC of the causal perturbation curves.

"removal-based video explanations" Sec. 4.6.1 (black substrate, AUC), STEP journal Sec. IV-A
(Eq. 12-19: MoRF / LeRF order, patch / superpixel units) and the ECCV-W study Sec. 3.3
(causal metric). Deletion + MoRF: lower is better; insertion + MoRF: higher is better (the
orientation flips with LeRF). The result holds the curve, so reports can draw it, and the
curve is shared through ``context["curve_cache"]`` with ``minimal_mask``.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any, ClassVar, Literal

from pydantic import Field
from torch import Tensor

from removalx.hookspecs import hookimpl
from removalx.metrics.perturbation import Curve, cached_curve
from removalx.stages import Metric, PluginConfig
from removalx.types import Attribution


class CurveConfig(PluginConfig):
    """How the perturbation curve is made (shared by ``deletion``, ``insertion``, ``minimal_mask``)."""

    order: Literal["morf", "lerf"] = Field("morf", description="most / least relevant units first")
    unit: Literal["pixel", "patch", "superpixel"] = Field("pixel", description="ranking unit")
    steps: int = Field(128, ge=1, description="number of steps L (papers: 28 and 128)")
    fill: Literal["black", "blur", "gray", "mean"] = Field("black", description="substrate of removed pixels")
    blur_sigma: float = Field(10.0, gt=0, description="sigma (px) of the blur substrate")
    patch: int = Field(7, ge=1, description="patch side (px) of the patch unit")
    superpixels: int = Field(256, ge=1, description="SLIC segments per frame of the superpixel unit")
    behavior: Literal["probability", "logit"] = "probability"
    batch_size: int = Field(16, ge=1, description="perturbed clips per forward pass")
    seed: int = Field(0, description="seed of the tie-breaking permutation")


class DeletionConfig(CurveConfig):
    """Deletion game: remove units from the clip, most relevant first (default)."""


class InsertionConfig(CurveConfig):
    """Insertion game: insert units into the substrate, most relevant first (default)."""


def curve_params(cfg: CurveConfig, mode: str) -> dict[str, Any]:
    """Keyword arguments of :func:`removalx.metrics.perturbation_curve` for ``cfg``."""
    return {"mode": mode, **cfg.model_dump()}


def get_curve(
    model: Any, video: Tensor, attribution: Attribution, cfg: CurveConfig, mode: str, context: dict[str, Any]
) -> tuple[Curve, bool]:
    """The curve, from ``context["curve_cache"]`` when present; returns ``(curve, reused)``."""
    cache: MutableMapping[str, Curve] | None = context.get("curve_cache")
    n0 = len(cache) if cache is not None else 0
    curve = cached_curve(model, video, attribution, cache, **curve_params(cfg, mode))
    reused = cache is not None and len(cache) == n0
    return curve, reused


class _AUCMetric(Metric):
    mode: ClassVar[str] = "deletion"

    def __init__(self, config: CurveConfig) -> None:
        self.config = config

    @property
    def higher_is_better(self) -> bool:
        return (self.mode == "insertion") == (self.config.order == "morf")

    def score(self, model: Any, video: Tensor, attribution: Attribution, **context: Any) -> dict[str, Any]:
        curve, reused = get_curve(model, video, attribution, self.config, self.mode, context)
        return {
            "value": curve.auc,
            "higher_is_better": self.higher_is_better,
            "curve": curve.to_dict(),
            "n_forward": 0 if reused else int(curve.meta["n_forward"]),
        }


class Deletion(_AUCMetric):
    """Deletion AUC (lower is better with MoRF)."""

    mode = "deletion"


class Insertion(_AUCMetric):
    """Insertion AUC (higher is better with MoRF)."""

    mode = "insertion"


@hookimpl
def removalx_register_metrics(registry):  # type: ignore[no-untyped-def]
    registry.add("deletion", DeletionConfig, Deletion)
    registry.add("insertion", InsertionConfig, Insertion)
