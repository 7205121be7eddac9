"""``deletion`` and ``insertion``: area under the causal perturbation curves.

"removal-based video explanations" Sec. 4.6.1, the STEP journal Sec. IV-A (Eq. 12-19: MoRF /
LeRF order, patch / superpixel units, Eq. 19 area), the adaptive occlusion paper Sec. 4.2
and the ECCV-W study Sec. 3.3 / 4.1. ``preset:`` selects one paper's protocol (unit, steps,
substrate of each game, area formula); settings given explicitly override the preset's.
Deletion + MoRF: lower is better; insertion + MoRF: higher is better (the orientation flips
with LeRF). The result holds the curve, so reports can draw it, names the preset and the
resolved settings, and the curve is shared through ``context["curve_cache"]`` with
``minimal_mask``.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator
from torch import Tensor

from removalx.plugin import (
    DEFAULT_PRESET,
    PRESET_FIELDS,
    PRESETS,
    Attribution,
    Curve,
    Metric,
    PluginConfig,
    cached_curve,
    hookimpl,
    preset_settings,
)

#: Settings of :func:`removalx.metrics.perturbation_curve` a config carries (the curve's cache key).
CURVE_FIELDS: tuple[str, ...] = (
    *(f for f in PRESET_FIELDS if f != "auc"),  # the area formula reads the curve, it does not make it
    "fill_value",
    "batch_size",
    "seed",
)


class CurveConfig(PluginConfig):
    """How the perturbation curve is made and measured (``deletion``, ``insertion``, ``minimal_mask``).

    ``preset`` fills every curve setting the config does not give; a given setting wins.
    The field defaults below are those of the default preset, ``removal``.
    """

    game: ClassVar[str] = "deletion"

    preset: Literal["removal", "step", "aosa", "eccvw"] = Field(
        DEFAULT_PRESET,
        description="paper protocol filling the settings not given: removal, step, aosa, eccvw",
    )
    order: Literal["morf", "lerf"] = Field("morf", description="most / least relevant units first")
    unit: Literal["pixel", "patch", "superpixel", "supervoxel", "level"] = Field(
        "level", description="ranking unit (superpixel: 2D SLIC per frame; supervoxel: 3D SLIC)"
    )
    steps: Annotated[int, Field(ge=1, le=1_000_000, strict=True)] | Literal["all"] = Field(
        "all",
        description="number of steps L (papers: 28, 128; at most 1e6; steps beyond the number of units "
        "repeat a clip, which is scored once) or 'all' (one unit per step)",
    )
    levels: int = Field(
        200,
        ge=0,
        description="bins of the level unit (0: every distinct value); at most 1e6",
        le=1_000_000,
        strict=True,
    )
    aggregate: Literal["mean", "sum"] = Field("mean", description="a unit's score: mean or sum of importance")
    fill: Literal["black", "blur", "gray", "mean", "dataset_mean"] = Field(
        "black", description="substrate: black, blur, gray (0.5), mean (clip mean), dataset_mean (fill_value)"
    )
    fill_value: tuple[float, ...] | None = Field(
        None, description="per-channel colour of fill dataset_mean (default: the model's normalisation mean)"
    )
    blur_sigma: float = Field(
        10.0, gt=0, description="sigma (px) of the blur substrate; at most 1000", le=1000
    )
    patch: int = Field(
        7, ge=1, description="patch side (px) of the patch unit; at most 4096", le=4096, strict=True
    )
    superpixels: int = Field(
        256,
        ge=1,
        description="SLIC segments per frame of the superpixel / supervoxel unit; at most 100,000",
        le=100_000,
        strict=True,
    )
    behavior: Literal["probability", "logit"] = "probability"
    auc: Literal["trapezoid", "step_mean"] = Field(
        "trapezoid", description="area: trapezoid over the pixel fraction, or step_mean (STEP Eq. 19)"
    )
    batch_size: int = Field(
        16, ge=1, description="perturbed clips per forward pass; at most 4096", le=4096, strict=True
    )
    seed: int = Field(
        0,
        description="seed of the tie-breaking permutation; in [0, 2**63 - 1]",
        ge=0,
        le=2**63 - 1,
        strict=True,
    )

    @model_validator(mode="before")
    @classmethod
    def _fill_from_preset(cls, data: Any) -> Any:
        """Settings the user left out come from the preset (explicit settings win)."""
        if not isinstance(data, dict):
            return data
        preset = data.get("preset", DEFAULT_PRESET)
        mode = data.get("mode", cls.game)
        if not isinstance(preset, str) or preset not in PRESETS or mode not in ("deletion", "insertion"):
            return data  # field validation reports the bad value
        return {**preset_settings(preset, mode), **data}

    @field_validator("fill_value")
    @classmethod
    def _check_fill_value(cls, v: tuple[float, ...] | None) -> tuple[float, ...] | None:
        if v is not None and not 1 <= len(v) <= 4:
            raise ValueError(f"fill_value needs one value per channel (1 to 4), got {len(v)}")
        return v

    def curve_mode(self) -> str:
        """The game whose curve this config measures."""
        return self.game

    def overrides(self) -> list[str]:
        """Preset settings this config changes (the user's explicit choices)."""
        table = preset_settings(self.preset, self.curve_mode())
        return [k for k in PRESET_FIELDS if getattr(self, k) != table[k]]


class DeletionConfig(CurveConfig):
    """Deletion game: remove units from the clip, most relevant first (default)."""


class InsertionConfig(CurveConfig):
    """Insertion game: insert units into the substrate, most relevant first (default)."""

    game: ClassVar[str] = "insertion"


def curve_params(cfg: CurveConfig, mode: str) -> dict[str, Any]:
    """Keyword arguments of :func:`removalx.metrics.perturbation_curve` for ``cfg``."""
    return {"mode": mode, **{k: getattr(cfg, k) for k in CURVE_FIELDS}}


#: Curve fields that do not change the protocol (left out of the reported settings).
_NOT_SETTINGS = ("batch_size", "seed")


def resolved_settings(cfg: CurveConfig, mode: str, curve: Curve) -> dict[str, Any]:
    """The settings that produced ``curve`` (steps and fill colour resolved), for the result."""
    out: dict[str, Any] = {"mode": mode}
    for k in (*CURVE_FIELDS, "auc"):
        out[k] = getattr(cfg, k)
    for k in _NOT_SETTINGS:
        out.pop(k, None)
    out["steps"] = int(curve.meta["steps"])
    out["steps_requested"] = cfg.steps
    out["fill_value"] = curve.meta.get("fill_value")
    out["fill_source"] = curve.meta.get("fill_source")
    out["n_units"] = int(curve.meta["n_units"])
    if cfg.unit != "level":
        out.pop("levels")
    if cfg.unit not in ("superpixel", "supervoxel"):
        out.pop("superpixels")
    if cfg.unit != "patch":
        out.pop("patch")
    if cfg.fill != "blur":
        out.pop("blur_sigma")
    if cfg.fill != "dataset_mean":
        out.pop("fill_value")
        out.pop("fill_source")
    return out


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
            "value": curve.area(self.config.auc),
            "higher_is_better": self.higher_is_better,
            "preset": self.config.preset,
            "settings": resolved_settings(self.config, self.mode, curve),
            "overrides": self.config.overrides(),
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
