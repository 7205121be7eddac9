"""The public :class:`Explainer`: runs a recipe on any model and clip (docs/concepts.md).

A pipeline recipe runs its seven stages through :class:`~removalx.pipeline.run.PipelineRun`
(segmentation, feature and sample selection, removal, model behavior, summary); a recipe
with an ``explainer`` stage (STEP, EP-3D, gradients) runs that explainer.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, MutableMapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from removalx.core.classifier import VideoClassifier
from removalx.core.recipe import Recipe, load_recipe
from removalx.core.registry import Registry, get_registry
from removalx.core.types import Attribution
from removalx.errors import ModelError
from removalx.models import as_classifier
from removalx.pipeline.batches import BatchSize, default_batch_size
from removalx.pipeline.checks import ONE_CLASS_FIX
from removalx.pipeline.run import PipelineRun
from removalx.pipeline.timing import Timer
from removalx.video.io import validate_video

__all__ = ["Explainer", "default_batch_size"]


class Explainer:
    """Run one recipe on any model and clip.

    Parameters
    ----------
    recipe : Recipe
        A validated recipe (see :func:`removalx.load_recipe`).
    registry : Registry, optional
        Plugins to use (default: everything installed).
    batch_size : int or "auto", optional
        Perturbed clips per forward pass (default: the recipe's, else 8 on a CPU and the memory
        bound on a GPU; ``"auto"``: the fastest of a few sizes timed on this model's CPU
        forward passes, which may differ from process to process).
    progress : bool
        Show a progress bar over forward passes, a line on stderr saying what will run
        (recipe, features, forward passes, batch size, device) and, after the first batch,
        an estimate of the remaining time.
    incremental : bool, optional
        Evaluate local perturbations (occlusion, LOCO, Univariate, AOSA) by incremental
        inference, with the same outputs as full forward passes (docs/incremental.md).
        Default: the recipe's ``behavior.incremental`` (true unless turned off).

    Examples
    --------
    >>> ex = removalx.Explainer.from_recipe("lime3d", seed=0,
    ...                                     overrides={"sample_selection.n_samples": 200})
    >>> attr = ex.explain(model, video)            # doctest: +SKIP
    """

    def __init__(
        self,
        recipe: Recipe,
        registry: Registry | None = None,
        batch_size: BatchSize = None,
        progress: bool = True,
        incremental: bool | None = None,
    ) -> None:
        self.recipe = recipe
        self.registry = registry or get_registry()
        self.batch_size = batch_size or recipe.batch_size
        self.progress = progress
        self.incremental = incremental

    @classmethod
    def from_recipe(
        cls,
        recipe: str | Path | Mapping[str, Any] | Recipe,
        seed: int | None = None,
        overrides: Mapping[str, Any] | Iterable[str] | None = None,
        *,
        registry: Registry | None = None,
        batch_size: BatchSize = None,
        progress: bool = True,
        incremental: bool | None = None,
    ) -> Explainer:
        """Load ``recipe`` (built-in name, YAML path, mapping) with overrides and seed."""
        registry = registry or get_registry()
        r = load_recipe(recipe, overrides=overrides, seed=seed, registry=registry)
        return cls(r, registry=registry, batch_size=batch_size, progress=progress, incremental=incremental)

    @property
    def seed(self) -> int:
        return int(self.recipe.seed)

    def _make(self, stage: str) -> Any:
        cfg = self.recipe.stage(stage)
        if cfg is None:
            return None
        return self.registry.make(stage, cfg.name, cfg)  # type: ignore[attr-defined]

    # -- public ------------------------------------------------------------------------
    def explain(
        self,
        model: Any,
        video: Any,
        target: Any = None,
        *,
        layout: str | None = None,
        batch_size: BatchSize = None,
        progress: bool | None = None,
        cache: MutableMapping[str, Any] | None = None,
    ) -> Attribution | list[Attribution]:
        """Explain ``model``'s prediction of ``target`` on one clip or a batch of clips.

        Captum-style calls work as they are: a model input ``[1, C, T, H, W]``, a tensor
        target, a batch of clips (one :class:`Attribution` per clip, in order).

        Parameters
        ----------
        model : VideoClassifier, nn.Module or callable
            A ``VideoClassifier``; a Hugging Face ``transformers`` video classifier (wrapped by
            :func:`removalx.models.hf.wrap_hf_model`); another ``nn.Module`` (assumed ``BCTHW``, no
            normalisation); or a callable ``float[B, T, H, W, C] -> logits [B, K]``.
        video : Tensor or ndarray
            One clip ``float32[T, H, W, C]`` in [0, 1], or a batch of clips in a layout with
            ``B`` (see ``layout``), values in [0, 1].
        target : int, str, Tensor, sequence or None
            Class to explain; ``None`` = the model's top class on the clean clip. For a batch,
            one target for every clip or one per clip (a list, or a tensor of ``B`` values).
        layout : str, optional
            Layout of ``video``: ``"THWC"`` (default for 4 dimensions), ``"CTHW"``, ``"TCHW"``
            for one clip; ``"BTHWC"``, ``"BCTHW"``, ``"BTCHW"`` for a batch. Default for 5
            dimensions: inferred from where the 3 (or 1) colour channels are (``BCTHW`` for a
            torchvision- or Captum-style ``[1, 3, T, H, W]``); pass it when that is ambiguous.
        batch_size : int or "auto", optional
            Overrides the explainer's batch size for this call.
        progress : bool, optional
            Overrides the explainer's progress setting for this call.
        cache : dict, optional
            Model outputs keyed by (plan, removal, behavior, target); a second run that
            changes only the summary or the visualization reuses them (no forward pass).

        Returns
        -------
        Attribution or list of Attribution
            One :class:`Attribution` for one clip; a list (one per clip, each equal to
            :meth:`explain_clip` of that clip and its target) for a batch.
        """
        from removalx.video.layouts import split_clips, split_targets

        clips, batched = split_clips(video, layout)
        if not batched:
            (tgt,) = split_targets(target, 1)
            return self.explain_clip(
                model, clips[0], tgt, batch_size=batch_size, progress=progress, cache=cache
            )
        clf = as_classifier(model)
        targets = split_targets(target, len(clips))
        return [
            self.explain_clip(clf, clip, tgt, batch_size=batch_size, progress=progress, cache=cache)
            for clip, tgt in zip(clips, targets)
        ]

    def explain_clip(
        self,
        model: Any,
        video: Any,
        target: int | str | None = None,
        *,
        batch_size: BatchSize = None,
        progress: bool | None = None,
        cache: MutableMapping[str, Any] | None = None,
    ) -> Attribution:
        """Explain ``model``'s prediction of ``target`` on one clip ``float32[T, H, W, C]``.

        The single-clip form of :meth:`explain` (same parameters, no ``layout``); it always
        returns one :class:`Attribution`.
        """
        t_start = time.perf_counter()
        clf = as_classifier(model)
        clip = validate_video(video)
        device = clf.device
        timer = Timer(device)
        clip_d = clip.to(device)
        n0, b0 = clf.n_forward, clf.n_backward
        with torch.inference_mode(), timer("model"):
            logits = clf(clip_d[None])
        target = clf.check_target(target, logits)
        gen = torch.Generator().manual_seed(self.seed)
        show = self.progress if progress is None else progress

        if not self.recipe.is_pipeline:
            attr = self._run_explainer(clf, clip_d, logits, target, gen, timer)
        else:
            attr = self._run_pipeline(clf, clip, clip_d, logits, target, gen, timer, batch_size, show, cache)
        attr.values = attr.values.detach().float().cpu()
        if attr.feature_values is not None:
            attr.feature_values = attr.feature_values.detach().float().cpu()
        attr.meta.update(
            recipe=self.recipe.to_dict(),
            seed=self.seed,
            n_forward=clf.n_forward - n0,
            n_backward=clf.n_backward - b0,
            target_name=clf.class_names[target] if clf.class_names else None,
            model=clf.name,
            device=str(device),
        )
        attr.meta.setdefault("timings", {})["total"] = time.perf_counter() - t_start
        attr.video = clip.cpu()
        return attr

    # -- the two kinds of recipe ---------------------------------------------------------
    def _run_explainer(
        self,
        clf: VideoClassifier,
        clip_d: Tensor,
        logits: Tensor,
        target: int,
        gen: torch.Generator,
        timer: Timer,
    ) -> Attribution:
        """A recipe whose ``explainer`` stage is a whole method (not a removal pipeline)."""
        explainer = self._make("explainer")
        with timer("explain"):
            attr: Attribution = explainer.explain(clf, clip_d, target, gen)
        attr.meta.setdefault("timings", {}).update(timer.times)
        if logits.shape[-1] == 1 and bool((attr.values == attr.values.flatten()[0]).all()):
            raise ModelError(
                f"Model {clf.name} returns a single class and explainer {self.recipe.name!r} gave a constant "
                "map: a softmax over one class is 1 whatever the input, so there is nothing to explain.",
                ONE_CLASS_FIX,
            )
        return attr

    def _run_pipeline(
        self,
        clf: VideoClassifier,
        clip: Tensor,
        clip_d: Tensor,
        logits: Tensor,
        target: int,
        gen: torch.Generator,
        timer: Timer,
        batch_size: BatchSize,
        show: bool,
        cache: MutableMapping[str, Any] | None,
    ) -> Attribution:
        """A removal pipeline: the seven stages (:class:`~removalx.pipeline.run.PipelineRun`)."""
        run = PipelineRun(
            self.recipe,
            self._make,
            self.seed,
            self.incremental,
            clf,
            clip,
            clip_d,
            logits,
            target,
            gen,
            timer,
            show,
        )
        with ExitStack() as stack:
            return run.run(stack, batch_size or self.batch_size, cache)
