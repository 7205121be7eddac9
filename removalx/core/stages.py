"""The interfaces a plugin of each stage implements.

A plugin is a pydantic config class plus a factory ``factory(config) -> stage object``;
the stage object implements the abstract class of its stage below. The stages follow the
decomposition of "removal-based video explanations" (Sec. 3, Fig. 1, Table 2).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor

from removalx.core.plans import ChunkedPlan
from removalx.core.types import Attribution, FeatureSpace

if TYPE_CHECKING:
    from removalx.core.classifier import VideoClassifier
    from removalx.core.legend import Legend

__all__ = [
    "MAX_SAMPLES",
    "SPACE_PROPERTIES",
    "Behavior",
    "BehaviorConfig",
    "Explainer",
    "FeatureSelector",
    "Metric",
    "ModelConfig",
    "PluginConfig",
    "Removal",
    "SampleSelector",
    "Segmenter",
    "Summary",
    "Visualizer",
    "blend",
    "channels_first_empty",
    "space_closure",
]

#: What a feature space can promise, declared by segmenters (:attr:`Segmenter.space_provides`)
#: and asked for by the stages that read the space (``space_requires`` of removals, feature
#: selections and summaries). ``recipes validate`` refuses a recipe whose segmentation
#: declares what it provides and lacks something another stage requires;
#: :func:`removalx.testing.check_plugin` verifies a segmenter's declaration on a tiny clip.
SPACE_PROPERTIES: dict[str, str] = {
    "partition": "every pixel belongs to exactly one feature, named by space.labels "
    "(a partition also has hard_masks, is covering and nonempty)",
    "hard_masks": "render() turns a 0/1 coalition into 0/1 keep-masks (no soft or blended masks)",
    "covering": "every pixel belongs to some feature: removing all features removes every pixel",
    "nonempty": "removing any one feature removes some pixel of the clip",
    "layer_channels": "the features are the channels of a model layer (space.layer names it) and "
    "render() hands its coalitions to the removal (activation_maps)",
}
_IMPLIED: dict[str, frozenset[str]] = {"partition": frozenset({"hard_masks", "covering", "nonempty"})}


def space_closure(declared: frozenset[str]) -> frozenset[str]:
    """``declared`` plus what it implies (a partition has hard masks and covers every pixel)."""
    out = set(declared)
    for prop in declared:
        out |= _IMPLIED.get(prop, frozenset())
    return frozenset(out)


class PluginConfig(BaseModel):
    """Base class of every plugin config: unknown keys are errors, configs are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class BehaviorConfig(PluginConfig):
    """Base config of model behaviors: the options every behavior shares.

    Attributes
    ----------
    incremental : bool
        Evaluate local perturbations by incremental inference (recompute only the region a
        perturbation changes, from the cached activations of a reference clip; Krypton,
        Nakandala et al., SIGMOD 2019). The outputs equal full forward passes up to float
        rounding; ``false`` runs full forward passes (docs/incremental.md).
    """

    incremental: bool = Field(
        True, description="recompute only the changed region of local perturbations (same outputs)"
    )


class ModelConfig(PluginConfig):
    """Base config of model adapters (``removalx_register_models``).

    Attributes
    ----------
    target : str
        What follows the colon in a model spec (``torchvision:r3d_18`` -> ``r3d_18``).
    weights : str or None
        Weights file, ``"none"`` for random weights, ``None`` for the adapter's default.
    device : str or None
        Device to run on (default: CUDA when available, else CPU).
    """

    target: str = ""
    weights: str | None = None
    device: str | None = None


class Segmenter(ABC):
    """Segmentation: split a clip into interpretable features (paper Sec. 3.1).

    ``space_provides`` declares what every space the segmenter returns guarantees, for any
    config and clip (names from :data:`SPACE_PROPERTIES`); ``None`` (the default) declares
    nothing, and no recipe is then refused for it.
    """

    space_provides: ClassVar[frozenset[str] | None] = None

    def bind_model(self, model: VideoClassifier) -> None:  # noqa: B027
        """See the model of the explanation before :meth:`segment` (default: nothing).

        The pipeline calls ``bind_model(model)`` once per explanation, before ``segment``;
        segmenters whose features come from the model (a layer's activation maps) read it.
        """

    @abstractmethod
    def segment(self, video: Tensor, generator: torch.Generator) -> FeatureSpace:
        """Build the feature space of ``video`` (``float32[T, H, W, C]`` in [0, 1])."""


#: Most samples (perturbed clips) one explanation may ask for. Beyond it the Monte Carlo
#: error of a sampled estimate (order ``1 / sqrt(S)``, 3e-4 here) is far below the other
#: approximations of a removal explanation, the run takes days with a video model
#: (1e7 forward passes at 100 clips/s is 28 h), and the ``O(S)`` buffers the pipeline may
#: keep (outputs for a ``cache``, AOSA-approx's refinement) stay at tens of megabytes.
MAX_SAMPLES = 10_000_000


class FeatureSelector(ABC):
    """Feature selection: which features each sample keeps (paper Sec. 3.2).

    ``max_samples(F)`` is the number of distinct coalitions the selector can produce
    (``None`` = unbounded), used by ``exhaustive`` sample selection. ``space_requires``
    names what :meth:`bind` needs of the feature space (:data:`SPACE_PROPERTIES`).
    """

    space_requires: ClassVar[frozenset[str]] = frozenset()

    @abstractmethod
    def plan(self, n_features: int, n_samples: int | None, generator: torch.Generator) -> ChunkedPlan:
        """Return ``n_samples`` coalitions (``None`` = all the selector implies).

        A :class:`~removalx.core.plans.SamplePlan` holds them all in memory; plans that can be
        large should be a :class:`~removalx.core.plans.LazyPlan` producing rows chunk by chunk
        (the pipeline reads chunks of at most the batch size). A lazy plan drawing from
        ``generator`` saves its state here (``generator.get_state()``) and restarts from it
        at every reading, so every reading gives the same rows.
        """

    def max_samples(self, n_features: int) -> int | None:
        return None

    def streamed_plan(self, n_features: int, n_samples: int, generator: torch.Generator) -> ChunkedPlan:
        """Up to ``n_samples`` coalitions for adaptive sample selection (default: :meth:`plan`).

        Adaptive sampling (the ``adaptive`` sample selection) stops after any round, so every
        prefix of this plan must be a valid sample, drawn independently (or in independent
        complement pairs, rows ``2k`` and ``2k + 1``, with ``meta["paired"]``) so that its
        variance can be estimated; memory must not depend on ``n_samples`` (a lazy plan).
        Selectors whose :meth:`plan` enumerates or merges coalitions override this.
        """
        return self.plan(n_features, n_samples, generator)

    def bind(self, space: FeatureSpace) -> None:  # noqa: B027
        """See the video's feature space before :meth:`plan` (default: nothing).

        The pipeline calls ``bind(space)`` once per explanation, before ``n_samples`` and
        ``plan``. Selectors whose coalitions depend on the features themselves (AOSA's
        co-occurrence of flow tubes) read what they need from ``space`` here; ``plan`` must
        still work without a prior ``bind`` (as :func:`removalx.testing.check_plugin` calls it).
        """


class SampleSelector(ABC):
    """Sample selection: how many samples to draw (paper Sec. 3.3).

    Counts above :data:`MAX_SAMPLES` are configuration errors: bound config fields with
    ``Field(..., le=MAX_SAMPLES)`` so that a recipe fails validation (the pipeline checks
    the count again).
    """

    #: True for selections that stop when the estimate has converged (``adaptive``): the
    #: pipeline then reads :meth:`FeatureSelector.streamed_plan` of :meth:`n_samples` rows in
    #: rounds of :attr:`round_size` and asks :meth:`converged` after each.
    adaptive: ClassVar[bool] = False
    #: Adaptive selections: samples per round (the summary's ``end_round`` follows each);
    #: 0 = no rounds. Read only when :attr:`adaptive` is true.
    round_size: int = 0
    #: Adaptive selections: rounds before :meth:`converged` is first asked (and the summary's
    #: ``estimate`` first read, except after the last round).
    min_rounds: int = 1

    @abstractmethod
    def n_samples(self, n_features: int, selector: FeatureSelector) -> int | None:
        """Number of samples for ``n_features`` features; ``None`` = what the selector implies."""

    def converged(self, values: Tensor, se: Tensor) -> bool:
        """Adaptive selections: stop now, given feature values and their standard errors?"""
        return False


class Removal(ABC):
    """Feature removal: what replaces removed pixels (paper Sec. 3.4).

    The perturbed clip is ``keep * video + (1 - keep) * fill``; :meth:`prepare` computes
    whatever is shared by all samples (a blurred copy, region means) once per video.
    ``space_requires`` names what :meth:`prepare` needs of the feature space
    (:data:`SPACE_PROPERTIES`; ``mean`` needs a ``partition`` for its region means).
    """

    space_requires: ClassVar[frozenset[str]] = frozenset()
    #: True for a removal that acts inside the model (Ablation-CAM's ``layer_ablation`` zeroes
    #: a layer's channels on the next forward pass and leaves the pixels alone): the pipeline
    #: then never uses incremental inference or any reuse of a clean pass, and
    #: :func:`removalx.testing.check_plugin` skips the pixel-space checks.
    acts_inside_model: ClassVar[bool] = False

    def bind_model(self, model: VideoClassifier) -> None:  # noqa: B027
        """See the model of the explanation before :meth:`prepare` (default: nothing).

        The pipeline calls ``bind_model(model)`` once per explanation, before :meth:`prepare`.
        Removals whose fill depends on the model read what they need here (``constant``'s
        ``value: model_mean`` reads the normalisation ``model.mean``); :meth:`prepare` and
        :meth:`fill` must still work without a prior ``bind_model`` (as
        :func:`removalx.testing.check_plugin` calls them).
        """

    def prepare(self, video: Tensor, space: FeatureSpace, seed: int) -> None:  # noqa: B027
        """Precompute per-video state (default: nothing)."""

    @abstractmethod
    def fill(self, video: Tensor, keep: Tensor, index: Tensor) -> Tensor:
        """Values for removed pixels: ``float[T,H,W,C]`` or ``float[B,T,H,W,C]``."""

    def apply(self, video: Tensor, keep: Tensor, index: Tensor, out: Tensor | None = None) -> Tensor:
        """Perturbed batch ``float[B, T, H, W, C]`` for keep-masks ``float[B, T, H, W]``.

        ``out``, when given, is a contiguous ``float[B, T, H, W, C]`` buffer to write the
        batch into (the pipeline reuses one buffer for every batch instead of allocating).
        """
        return blend(video, keep, self.fill(video, keep, index), out)

    def expected_fill(self, video: Tensor, keep: Tensor, index: Tensor) -> Tensor:
        """Expectation of :meth:`fill` over the removal's randomness (default: :meth:`fill`).

        Random removals (conditional sampling) override it; a behavior that linearises the
        model (AOSA-approx, Eq. 7) then evaluates ``E[fill] = mu`` in closed form.
        """
        return self.fill(video, keep, index)

    def apply_expected(self, video: Tensor, keep: Tensor, index: Tensor, out: Tensor | None = None) -> Tensor:
        """Like :meth:`apply` with :meth:`expected_fill` in place of :meth:`fill`."""
        if type(self).expected_fill is Removal.expected_fill:
            return self.apply(video, keep, index, out=out)
        return blend(video, keep, self.expected_fill(video, keep, index), out)


def channels_first_empty(shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> Tensor:
    """An uninitialised ``[B, T, H, W, C]`` tensor whose memory is laid out as ``[B, C, T, H, W]``."""
    b, t, h, w, c = shape
    return torch.empty((b, c, t, h, w), dtype=dtype, device=device).movedim(1, -1)


def blend(video: Tensor, keep: Tensor, fill: Tensor, out: Tensor | None = None) -> Tensor:
    """``keep * video + (1 - keep) * fill`` as a contiguous ``float[B, T, H, W, C]`` batch.

    Parameters
    ----------
    video : Tensor
        ``float[T, H, W, C]``.
    keep : Tensor
        ``float[B, T, H, W]`` in [0, 1].
    fill : Tensor
        ``float[C]``, ``float[T, H, W, C]`` or ``float[B, T, H, W, C]``.
    out : Tensor, optional
        ``float[B, T, H, W, C]`` to write into (best made by :func:`channels_first_empty`).

    Notes
    -----
    The batch has the logical shape ``[B, T, H, W, C]`` but is stored channel-first (see
    :func:`channels_first_empty`): the arithmetic then runs on contiguous memory
    (broadcasting ``keep`` over a trailing channel axis of size 3 does not vectorise on CPU),
    and the ``BCTHW`` permute of video models is a free view instead of a copy.
    """
    shape = (keep.shape[0], *video.shape)
    if torch.is_grad_enabled() and (video.requires_grad or keep.requires_grad or fill.requires_grad):
        return torch.lerp(fill.expand(shape), video.expand(shape), keep.unsqueeze(-1))
    if out is None:
        out = channels_first_empty(shape, torch.promote_types(video.dtype, keep.dtype), video.device)
    c = video.shape[-1]
    fill_cf = fill.reshape(c, 1, 1, 1) if fill.dim() == 1 else fill.movedim(-1, -4)
    diff = video.movedim(-1, 0) - fill_cf  # [C, T, H, W] or [B, C, T, H, W]
    out_cf = out.movedim(-1, 1)
    torch.mul(diff, keep.unsqueeze(1), out=out_cf)
    if fill.dim() > 1 or bool(fill.any()):
        out_cf.add_(fill_cf)
    return out


class Behavior(ABC):
    """Model behavior: the scalar read from the model for each perturbed clip (Sec. 3.5)."""

    #: True when :meth:`evaluate` needs gradients (no ``inference_mode``).
    needs_grad: ClassVar[bool] = False
    #: True when :meth:`evaluate` wants ``Removal.apply_expected`` batches (the removal's
    #: expected fill instead of a random draw), e.g. a Taylor approximation (AOSA Eq. 7).
    expected_input: bool = False
    #: True when the pipeline must call :meth:`refine` on all outputs before the summary.
    refines: bool = False
    #: Anything the behavior reports (set on the instance, no default); a non-empty dict is
    #: copied to ``Attribution.meta["behavior"]``.
    meta: dict[str, Any]

    def begin(self, model: VideoClassifier, video: Tensor, target: int) -> None:  # noqa: B027
        """Called once per explanation before any batch (default: nothing)."""

    def evaluate(self, model: VideoClassifier, batch: Tensor, target: int) -> Tensor:
        """``float[B]`` for a perturbed batch ``float[B, T, H, W, C]``."""
        return self.score(model(batch), target)

    @abstractmethod
    def score(self, logits: Tensor, target: int) -> Tensor:
        """Turn logits ``float[B, K]`` into ``float[B]``."""

    def refine(
        self,
        model: VideoClassifier,
        video: Tensor,
        target: int,
        y: Tensor,
        perturb: Callable[[Tensor], Tensor],
    ) -> Tensor:
        """Revise all outputs ``y float[S]`` once every sample is evaluated (if :attr:`refines`).

        ``perturb(index long[n]) -> float[n, T, H, W, C]`` rebuilds the perturbed clips of
        plan rows ``index`` (as :meth:`evaluate` saw them). Called outside ``inference_mode``;
        the default returns ``y`` unchanged.
        """
        return y


class Summary(ABC):
    """Summary: turn (coalition, model output) pairs into an attribution (Sec. 3.6).

    Streaming: :meth:`update` is called once per batch, in plan order; memory must not grow
    with the number of samples (``F x F`` normal equations or a pixel accumulator are fine).
    ``space_requires`` names what the summary needs of the feature space
    (:data:`SPACE_PROPERTIES`).
    """

    space_requires: ClassVar[frozenset[str]] = frozenset()

    #: Base cases the summary needs, a subset of ``{"full", "empty"}``.
    requires: ClassVar[tuple[str, ...]] = ()
    #: True when :meth:`update` uses the pixel keep-masks (else ``keep`` may be ``None``).
    needs_keep: ClassVar[bool] = False
    #: True when low values mean important (3D SOS's "prediction value").
    lower_is_important: ClassVar[bool] = False
    #: Set to True by the pipeline before :meth:`begin` when sampling is adaptive, i.e. when
    #: :meth:`end_round` and :meth:`estimate` will be called (error statistics can be skipped
    #: otherwise).
    adaptive: bool = False
    #: Anything the summary reports (set on the instance, no default); a non-empty dict is
    #: copied to ``Attribution.meta["summary"]``.
    meta: dict[str, Any]

    def begin(self, space: FeatureSpace, plan: ChunkedPlan, base: dict[str, float]) -> None:  # noqa: B027
        """Called once before the first batch with the base-case outputs.

        ``plan`` tells ``n_samples``, ``meta`` and whether it is ``weighted``; its rows come
        through :meth:`update` (reading them here would read the whole plan again).
        """

    @abstractmethod
    def update(self, z: Tensor, keep: Tensor | None, y: Tensor, weights: Tensor | None) -> None:
        """Accumulate one batch: ``z float[B,F]``, ``keep float[B,T,H,W]``, ``y float[B]``."""

    @abstractmethod
    def finalize(self, space: FeatureSpace) -> tuple[Tensor, Tensor | None]:
        """Return ``(values float[T,H,W], feature_values float[F] or None)``."""

    def end_round(self) -> None:  # noqa: B027
        """Adaptive sampling: the samples of one round have all been seen (default: nothing)."""

    def estimate(self) -> tuple[Tensor, Tensor] | None:
        """Adaptive sampling: ``(feature values float64[F], standard errors float64[F])`` of the
        samples seen so far, or ``None`` when the summary cannot estimate its error (default)."""
        return None


class Visualizer(ABC):
    """Visualization: turn an attribution into RGB frames (Sec. 3.7)."""

    @abstractmethod
    def frames(self, video: Tensor, attribution: Attribution) -> Tensor:
        """``uint8[T, H, W, 3]`` overlay frames."""

    def legend(self, attribution: Attribution) -> Legend | None:
        """The colour bar drawn under the frames (:class:`removalx.core.legend.Legend`); ``None``: none."""
        return None


class Explainer(ABC):
    """A whole method that is not a removal pipeline (STEP, EP-3D, gradients)."""

    @abstractmethod
    def explain(
        self, model: VideoClassifier, video: Tensor, target: int, generator: torch.Generator
    ) -> Attribution:
        """Return the attribution of ``target`` for ``video``."""


class Metric(ABC):
    """A score of an attribution (faithfulness, localisation, ...)."""

    @abstractmethod
    def score(
        self, model: VideoClassifier, video: Tensor, attribution: Attribution, **context: Any
    ) -> dict[str, Any]:
        """Return a dict with at least ``"value"``."""
