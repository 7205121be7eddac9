"""One explanation by the seven stages: segmentation, selection, removal, behavior, summary.

plan -> batches of keep-masks rendered on the model's device -> perturbed clips -> model
behavior -> streaming summary. The plan is read in chunks of the batch size and only one
batch of perturbed clips exists at a time, so memory does not grow with the number of
samples (up to the ``O(S)`` output buffer kept for a ``cache`` or a refining behavior).
The concerns that cut across the stages live beside this module: the base cases
(:mod:`.base_cases`), the refine pass (:mod:`.refine`), adaptive rounds (:mod:`.adaptive`),
the output cache (:mod:`.cache`) and the run's metadata (:mod:`.metadata`).
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from removalx.core.classifier import VideoClassifier
from removalx.core.plans import ChunkedPlan
from removalx.core.progress import FirstBatchEstimate, preflight_line, tqdm, write_line
from removalx.core.recipe import Recipe
from removalx.core.stages import Behavior, FeatureSelector, Removal, SampleSelector, Summary
from removalx.core.types import Attribution, FeatureSpace
from removalx.incremental.session import incremental, plan_reference
from removalx.pipeline.adaptive import AdaptiveRounds, enable_adaptive, split_rounds
from removalx.pipeline.base_cases import base_forward_passes, evaluate_base_cases
from removalx.pipeline.batches import BatchEvaluator, BatchSize, apply_for, choose_batch_size
from removalx.pipeline.cache import OutputCache
from removalx.pipeline.checks import (
    check_behavior_sees_the_model,
    check_plan,
    check_sample_count,
    checked_chunks,
)
from removalx.pipeline.metadata import run_meta, stage_meta
from removalx.pipeline.refine import refine_outputs
from removalx.pipeline.timing import Timer

__all__ = ["PipelineRun", "Selection"]


@dataclass(frozen=True)
class Selection:
    """What the feature and sample selections decided: the plan of coalitions to evaluate."""

    features: FeatureSelector
    samples: SampleSelector
    plan: ChunkedPlan
    digest: str
    #: Whether the sample selection is adaptive (rounds until converged).
    adaptive: bool


class PipelineRun:
    """The seven stages of ``recipe`` on one clip, for one target.

    Parameters
    ----------
    recipe : Recipe
        A pipeline recipe.
    make : callable
        ``make(stage) -> stage object`` built from the recipe's config of ``stage``.
    seed : int
        The recipe's seed (removals draw their randomness from it).
    incremental : bool or None
        Incremental inference on, off, or ``None`` for the recipe's ``behavior.incremental``.
    clf, clip, clip_d, clean_logits, target, gen, timer, show
        The model, the clip (on the CPU and on the model's device), the clean pass's logits,
        the class explained, the generator of the selections, the stage timer, and whether
        progress output is on.
    """

    def __init__(
        self,
        recipe: Recipe,
        make: Callable[[str], Any],
        seed: int,
        incremental: bool | None,
        clf: VideoClassifier,
        clip: Tensor,
        clip_d: Tensor,
        clean_logits: Tensor,
        target: int,
        gen: torch.Generator,
        timer: Timer,
        show: bool,
    ) -> None:
        self.recipe, self.make, self.seed, self.use_incremental = recipe, make, seed, incremental
        self.clf, self.clip, self.clip_d, self.clean_logits = clf, clip, clip_d, clean_logits
        self.target, self.gen, self.timer, self.show = target, gen, timer, show
        self.device = clf.device

    def run(
        self, stack: ExitStack, batch_size: BatchSize, cache: MutableMapping[str, Any] | None
    ) -> Attribution:
        """Explain: segmentation, selection, removal, behavior, summary; then the metadata."""
        space = self.segmentation()
        sel = self.selection(space)
        removal, behavior, summary = self.stages(sel.adaptive)
        with self.timer("perturb"):
            removal.bind_model(self.clf)
            removal.prepare(self.clip_d, space, self.seed)
        behavior.begin(self.clf, self.clip_d, self.target)
        bs, tuning = choose_batch_size(
            self.clf, self.clip_d, batch_size, behavior, sel.plan.n_samples, self.timer
        )
        # an adaptive run stops part-way: there is no full set of outputs to store
        outputs = OutputCache.open(
            None if sel.adaptive else cache, sel.digest, self.recipe, self.target, sel.plan.n_samples
        )
        inc = stack.enter_context(
            self.incremental_inference(sel.plan, behavior, removal, bs, not outputs.cached)
        )
        evaluate = BatchEvaluator(
            self.clf, space, self.clip_d, removal, behavior, summary.needs_keep, self.target, self.timer, bs
        )
        base = self.begin_summary(summary, evaluate, space, sel.plan, bs, outputs)
        rounds = AdaptiveRounds(sel.samples if sel.adaptive else None)
        used = self.evaluate_samples(sel.plan, bs, evaluate, summary, outputs, rounds)
        with self.timer("summary"):
            values, feature_values = summary.finalize(space)
        outputs.store(base)
        meta = run_meta(self.timer, used, space, sel.plan, sel.digest, bs, base, summary, outputs.cached)
        if sel.adaptive:
            meta["adaptive"] = rounds.meta(used, sel.plan.n_samples, space.n_features)
        if tuning is not None:
            meta["batch_tuning"] = tuning
        stack.close()  # detach incremental inference: its counts are final
        meta["incremental"] = inc.to_meta()
        meta.update(stage_meta(behavior, summary))
        return Attribution(
            values=values, feature_values=feature_values, target=self.target, space=space, meta=meta
        )

    # -- the stages ------------------------------------------------------------------------
    def segmentation(self) -> FeatureSpace:
        """Segmentation: the clip's feature space, on the model's device."""
        with self.timer("segmentation"):
            segmenter = self.make("segmentation")
            bind = getattr(segmenter, "bind_model", None)
            if callable(bind):
                bind(self.clf)
            space: FeatureSpace = segmenter.segment(self.clip, self.gen)
            return space.to(self.device)

    def selection(self, space: FeatureSpace) -> Selection:
        """Feature and sample selection: the checked plan (streamed for adaptive sampling)."""
        with self.timer("selection"):
            fsel: FeatureSelector = self.make("feature_selection")
            fsel.bind(space)
            ssel: SampleSelector = self.make("sample_selection")
            adaptive = bool(ssel.adaptive)
            n = ssel.n_samples(space.n_features, fsel)
            check_sample_count(n, "The sample selection")
            if adaptive and n is not None:
                plan: ChunkedPlan = fsel.streamed_plan(space.n_features, n, self.gen)
            else:
                plan = fsel.plan(space.n_features, n, self.gen)
            check_plan(plan, space.n_features)
            return Selection(fsel, ssel, plan, plan.digest(), adaptive)

    def stages(self, adaptive: bool) -> tuple[Removal, Behavior, Summary]:
        """Removal, behavior and summary, checked against the model and the sample selection."""
        removal: Removal = self.make("removal")
        behavior: Behavior = self.make("behavior")
        check_behavior_sees_the_model(behavior, self.clean_logits, self.target, str(self.clf.name))
        summary: Summary = self.make("summary")
        if adaptive:
            enable_adaptive(behavior, summary, self.recipe)
        return removal, behavior, summary

    def begin_summary(
        self,
        summary: Summary,
        evaluate: BatchEvaluator,
        space: FeatureSpace,
        plan: ChunkedPlan,
        bs: int,
        outputs: OutputCache,
    ) -> dict[str, float]:
        """The line saying what will run, the summary's base cases, then its ``begin``."""
        self.announce(space.n_features, plan.n_samples, bs, summary, evaluate.behavior, outputs.cached)
        base = evaluate_base_cases(summary, evaluate, self.clean_logits, space.n_features, outputs)
        summary.begin(space, plan, base)
        return base

    def evaluate_samples(
        self,
        plan: ChunkedPlan,
        bs: int,
        evaluate: BatchEvaluator,
        summary: Summary,
        outputs: OutputCache,
        rounds: AdaptiveRounds,
    ) -> int:
        """Every sample through removal, behavior and summary (refined first when the behavior
        refines, read from the cache when there); the number of samples used."""
        eta = FirstBatchEstimate(self.recipe.name, plan.n_samples, enabled=self.show and not outputs.cached)
        refined = None
        if not outputs.cached and evaluate.behavior.refines:
            refined = refine_outputs(plan, bs, evaluate, eta, self.timer)
        return self.stream(plan, bs, evaluate, summary, outputs, refined, rounds, eta)

    def stream(
        self,
        plan: ChunkedPlan,
        bs: int,
        evaluate: BatchEvaluator,
        summary: Summary,
        outputs: OutputCache,
        refined: Tensor | None,
        rounds: AdaptiveRounds,
        eta: FirstBatchEstimate,
    ) -> int:
        """The samples batch by batch through removal, behavior and summary; the number used.

        Outputs come from the refine pass or the cache when there is one; an adaptive run
        stops at the first round after which the selection has converged.
        """
        desc = f"{self.recipe.name}: forward passes" if not outputs.cached else f"{self.recipe.name}: cached"
        used = 0
        with tqdm(total=plan.n_samples, desc=desc, unit="clip", disable=not self.show, leave=False) as bar:
            eta.start()
            for start, z_rows, w_rows in split_rounds(checked_chunks(plan, bs), rounds.size):
                stop = start + z_rows.shape[0]
                z = z_rows.to(self.device, torch.float32)
                idx = torch.arange(start, stop, device=self.device)
                w = None if w_rows is None else w_rows.to(self.device)
                known = outputs.known(start, stop) if refined is None else refined[start:stop]
                keep, y = evaluate(z, idx, known)
                with self.timer("summary"):
                    summary.update(z, keep if summary.needs_keep else None, y, w)
                outputs.record(start, stop, y)
                bar.update(stop - start)
                eta.batch_done(stop - start)
                used = stop
                if rounds.stop_after(stop, plan.n_samples, summary, self.timer):
                    break
        return used

    # -- around the stages -------------------------------------------------------------------
    def announce(
        self, n_features: int, n_samples: int, bs: int, summary: Summary, behavior: Behavior, cached: bool
    ) -> None:
        """The line saying what will run (with progress output on)."""
        if not self.show:
            return
        n_fwd = 0 if cached else n_samples + base_forward_passes(summary, behavior)
        write_line(preflight_line(self.recipe.name, n_features, n_fwd, bs, str(self.device)))

    def incremental_inference(
        self, plan: ChunkedPlan, behavior: Behavior, removal: Removal, bs: int, needed: bool
    ) -> Any:
        """Incremental inference for this plan: reference = clean or all-removed clip, or off."""
        cfg = self.recipe.stage("behavior")
        on = (
            self.use_incremental
            if self.use_incremental is not None
            else bool(getattr(cfg, "incremental", True))
        )
        clf, clip = self.clf, self.clip_d
        if not needed:
            return incremental(clf, None, None, reason="outputs read from the cache")
        if not on or behavior.needs_grad:
            return incremental(clf, None, None, enabled=False)
        if removal.acts_inside_model:  # the pixels never change: every pass must run the layers
            return incremental(clf, None, None, reason="the removal acts inside the model")
        first = next(iter(plan.chunks(bs))).z
        kind = plan_reference(first)
        if kind is None:
            return incremental(clf, None, None, reason="the samples are not local perturbations")
        if kind == "clean":
            return incremental(clf, clip, kind)
        with torch.inference_mode():
            keep = torch.zeros((1, *clip.shape[:3]), dtype=clip.dtype, device=clip.device)
            index = torch.full((1,), -2, dtype=torch.long, device=clip.device)
            empty = apply_for(removal, behavior)(clip, keep, index)[0]
        return incremental(clf, empty, kind)
