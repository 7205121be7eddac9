"""The streaming removal pipeline and the public :class:`Explainer` (docs/concepts.md).

plan -> batches of keep-masks rendered on the model's device -> perturbed clips ->
model behavior -> streaming summary. The plan is read in chunks of the batch size and only
one batch of perturbed clips exists at a time, so memory does not grow with the number of
samples (up to the ``O(S)`` output buffer kept for a ``cache`` or a refining behavior).
"""

from __future__ import annotations

import inspect
import os
import time
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from contextlib import ExitStack, contextmanager, nullcontext
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from removalx.errors import ConfigError, ModelError, PluginError
from removalx.incremental.session import incremental, plan_reference
from removalx.io import validate_video
from removalx.models import VideoClassifier, as_classifier
from removalx.plans import ChunkedPlan, PlanChunk, SamplePlan
from removalx.progress import FirstBatchEstimate, preflight_line, write_line
from removalx.recipe import Recipe, load_recipe
from removalx.registry import Registry, get_registry
from removalx.stages import MAX_SAMPLES, Behavior, Removal, Summary, channels_first_empty
from removalx.types import Attribution, FeatureSpace

__all__ = ["Explainer", "default_batch_size"]


class Timer:
    """Accumulates wall time per stage (synchronising CUDA so that times are real)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.times: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str):  # type: ignore[no-untyped-def]
        self._sync()
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self._sync()
            self.times[name] = self.times.get(name, 0.0) + time.perf_counter() - t0

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


def default_batch_size(video: Tensor, device: torch.device) -> int:
    """A batch size that keeps perturbation tensors within a quarter of free memory (1 to 32)."""
    per_sample = video.numel() * 4 * 4  # perturbed clip, keep-mask, fill and model input copy
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
    else:
        try:
            free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            free = 4 * 2**30
    return int(max(1, min(32, (free // 4) // max(per_sample, 1))))


class Explainer:
    """Run one recipe on any model and clip.

    Parameters
    ----------
    recipe : Recipe
        A validated recipe (see :func:`removalx.load_recipe`).
    registry : Registry, optional
        Plugins to use (default: everything installed).
    batch_size : int, optional
        Perturbed clips per forward pass (default: the recipe's, else chosen from memory).
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
        batch_size: int | None = None,
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
        batch_size: int | None = None,
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
        batch_size: int | None = None,
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
            :func:`removalx.hf.wrap_hf_model`); another ``nn.Module`` (assumed ``BCTHW``, no
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
        batch_size : int, optional
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
        from removalx.layouts import split_clips, split_targets

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
        batch_size: int | None = None,
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
            explainer = self._make("explainer")
            with timer("explain"):
                attr = explainer.explain(clf, clip_d, target, gen)
            attr.meta.setdefault("timings", {}).update(timer.times)
            if logits.shape[-1] == 1 and bool((attr.values == attr.values.flatten()[0]).all()):
                raise ModelError(
                    f"Model {clf.name} returns a single class and explainer {self.recipe.name!r} gave a constant "
                    "map: a softmax over one class is 1 whatever the input, so there is nothing to explain.",
                    _ONE_CLASS_FIX,
                )
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

    # -- the seven stages ----------------------------------------------------------------
    def _run_pipeline(self, *args: Any) -> Attribution:
        with ExitStack() as stack:
            return self._pipeline(stack, *args)

    def _pipeline(
        self,
        stack: ExitStack,
        clf: VideoClassifier,
        clip: Tensor,
        clip_d: Tensor,
        clean_logits: Tensor,
        target: int,
        gen: torch.Generator,
        timer: Timer,
        batch_size: int | None,
        show: bool,
        cache: MutableMapping[str, Any] | None,
    ) -> Attribution:
        device = clf.device
        with timer("segmentation"):
            space: FeatureSpace = self._make("segmentation").segment(clip, gen)
            space = space.to(device)
        with timer("selection"):
            fsel = self._make("feature_selection")
            fsel.bind(space)
            ssel = self._make("sample_selection")
            adaptive = bool(getattr(ssel, "adaptive", False))
            n = ssel.n_samples(space.n_features, fsel)
            _check_sample_count(n, "The sample selection")
            if adaptive and n is not None:
                plan: ChunkedPlan = fsel.streamed_plan(space.n_features, n, gen)
            else:
                plan = fsel.plan(space.n_features, n, gen)
            _check_plan(plan, space.n_features)
            digest = plan.digest()
        removal: Removal = self._make("removal")
        behavior: Behavior = self._make("behavior")
        _check_behavior_sees_the_model(behavior, clean_logits, target, str(clf.name))
        summary: Summary = self._make("summary")
        if adaptive:
            _check_adaptive(behavior, summary, self.recipe)
            summary.adaptive = True
            cache = None  # an adaptive run stops part-way: there is no full set of outputs to store
        with timer("perturb"):
            removal.prepare(clip_d, space, self.seed)
        behavior.begin(clf, clip_d, target)

        bs = batch_size or self.batch_size or default_batch_size(clip, device)
        key = _cache_key(digest, self.recipe, target) if cache is not None else None
        cached = cache.get(key) if cache is not None and key is not None else None
        inc = stack.enter_context(self._incremental(clf, plan, behavior, removal, clip_d, bs, cached is None))
        grad_ctx = nullcontext() if behavior.needs_grad else torch.inference_mode()
        apply = apply_for(removal, behavior)
        # One output buffer serves every batch (fresh 10-100 MB tensors per batch cost page
        # faults that dominate the framework's own time); removals without ``out`` allocate.
        buffer = _BatchBuffer(clip_d, bs) if _accepts_out(apply) and not behavior.needs_grad else None

        def run(z: Tensor, index: Tensor, y_known: Tensor | None) -> tuple[Tensor | None, Tensor]:
            """Keep-masks (``None`` when known outputs make them unneeded) and outputs of a batch."""
            if y_known is not None and not summary.needs_keep:
                return None, y_known.to(device)
            with timer("perturb"):
                keep = space.render(z, index)
            if y_known is not None:
                return keep, y_known.to(device)
            with timer("perturb"):
                if buffer is None:
                    batch = apply(clip_d, keep, index)
                else:
                    batch = apply(clip_d, keep, index, out=buffer.take(z.shape[0]))
            with timer("model"), grad_ctx:
                y = behavior.evaluate(clf, batch, target)
            return keep, _check_output(y, z.shape[0]).detach()

        base: dict[str, float] = {}
        # "full" keeps every pixel (a FeatureSpace contract, checked by check_plugin), so a
        # behavior that only scores logits gets it from the clean pass: no second forward.
        scores_logits = type(behavior).evaluate is Behavior.evaluate
        if show:
            n_base = sum(1 for case in summary.requires if not (case == "full" and scores_logits))
            n_fwd = 0 if cached is not None else plan.n_samples + n_base
            write_line(preflight_line(self.recipe.name, space.n_features, n_fwd, bs, str(device)))
        for i, case in enumerate(summary.requires):
            if case == "full" and scores_logits:
                base[case] = float(behavior.score(clean_logits, target)[0])
                continue
            z = torch.full((1, space.n_features), 1.0 if case == "full" else 0.0, device=device)
            idx = torch.full((1,), -1 - i, dtype=torch.long, device=device)
            known = None if cached is None else cached["base"][case].reshape(1)
            base[case] = float(run(z, idx, known)[1][0])
        summary.begin(space, plan, base)

        eta = FirstBatchEstimate(self.recipe.name, plan.n_samples, enabled=show and cached is None)
        refined: Tensor | None = None
        if cached is None and getattr(behavior, "refines", False):
            # Behaviors that revise outputs once all are known (AOSA-approx's IQR step) see
            # every y before the summary does (an O(S) buffer of floats); the summary then
            # streams the revised values.
            refined = torch.empty(plan.n_samples, dtype=torch.float32)
            eta.start()
            for start, z_rows, _ in _checked_chunks(plan, bs):
                stop = start + z_rows.shape[0]
                z = z_rows.to(device, torch.float32)
                refined[start:stop] = run(z, torch.arange(start, stop, device=device), None)[1].float().cpu()
                eta.batch_done(stop - start)

            def perturb(index: Tensor) -> Tensor:
                index = index.to(device, torch.long)
                with torch.no_grad():
                    z_rows, _ = plan.rows(index.cpu())
                    keep = space.render(z_rows.to(device, torch.float32), index)
                    return apply(clip_d, keep, index)

            with timer("model"):
                refined = _check_output(
                    behavior.refine(clf, clip_d, target, refined, perturb), plan.n_samples
                )
                refined = refined.detach().float().cpu()

        # Outputs are kept (4 bytes per sample) only to fill the cache.
        ys = torch.empty(plan.n_samples, dtype=torch.float32) if key is not None and cached is None else None
        bar = tqdm(
            total=plan.n_samples,
            desc=f"{self.recipe.name}: forward passes" if cached is None else f"{self.recipe.name}: cached",
            unit="clip",
            disable=not show,
            leave=False,
        )
        used = 0
        rounds = 0
        estimate: tuple[Tensor, Tensor] | None = None
        met = False
        round_size = int(getattr(ssel, "round_size", 0)) if adaptive else 0
        with bar:
            eta.start()
            for start, z_rows, w_rows in _split_rounds(_checked_chunks(plan, bs), round_size):
                stop = start + z_rows.shape[0]
                z = z_rows.to(device, torch.float32)
                idx = torch.arange(start, stop, device=device)
                w = None if w_rows is None else w_rows.to(device)
                known = None if cached is None else cached["y"][start:stop]
                if refined is not None:
                    known = refined[start:stop]
                keep, y = run(z, idx, known)
                with timer("summary"):
                    summary.update(z, keep if summary.needs_keep else None, y, w)
                if ys is not None:
                    ys[start:stop] = y.float().cpu()
                bar.update(stop - start)
                eta.batch_done(stop - start)
                used = stop
                if round_size and (stop % round_size == 0 or stop == plan.n_samples):
                    with timer("summary"):
                        summary.end_round()
                        rounds += 1
                        if rounds >= ssel.min_rounds or stop == plan.n_samples:
                            estimate = _estimate(summary)
                    if estimate is not None and rounds >= ssel.min_rounds and ssel.converged(*estimate):
                        met = True
                        break
        with timer("summary"):
            values, feature_values = summary.finalize(space)
        if cache is not None and key is not None and ys is not None:
            cache[key] = {"y": ys, "base": {k: torch.tensor(v) for k, v in base.items()}}
        meta: dict[str, Any] = {
            "timings": dict(timer.times),
            "n_samples": used,
            "n_features": space.n_features,
            "plan_digest": digest,
            "batch_size": bs,
            "base": base,
            "plan": _plain(plan.meta),
            "segmentation": _plain(getattr(space, "meta", None) or {}),
            "lower_is_important": summary.lower_is_important,
            "cached_outputs": cached is not None,
        }
        if adaptive:
            se = estimate[1] if estimate is not None else torch.full((space.n_features,), float("nan"))
            cfg = getattr(ssel, "config", None)
            meta["adaptive"] = {
                "samples_used": used,
                "max_samples": plan.n_samples,
                "rounds": rounds,
                "tolerance": float(getattr(cfg, "tolerance", float("nan"))),
                "criterion": str(getattr(cfg, "criterion", "")),
                "tolerance_met": met,
                "max_se": float(torch.nan_to_num(se, nan=float("inf")).max()),
                "se": [float(v) for v in se.double().cpu()],
            }
        stack.close()  # detach incremental inference: its counts are final
        meta["incremental"] = inc.to_meta()
        for name, stage in (("behavior", behavior), ("summary", summary)):
            stage_meta = getattr(stage, "meta", None)
            if isinstance(stage_meta, dict) and stage_meta:
                meta[name] = dict(stage_meta)
        return Attribution(
            values=values, feature_values=feature_values, target=target, space=space, meta=meta
        )

    def _incremental(
        self,
        clf: VideoClassifier,
        plan: ChunkedPlan,
        behavior: Behavior,
        removal: Removal,
        clip: Tensor,
        bs: int,
        needed: bool,
    ) -> Any:
        """Incremental inference for this plan: reference = clean or all-removed clip, or off."""
        cfg = self.recipe.stage("behavior")
        on = self.incremental if self.incremental is not None else bool(getattr(cfg, "incremental", True))
        if not needed:
            return incremental(clf, None, None, reason="outputs read from the cache")
        if not on or behavior.needs_grad:
            return incremental(clf, None, None, enabled=False)
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


def apply_for(removal: Removal, behavior: Behavior) -> Any:
    """The removal's ``apply`` (or ``apply_expected`` for a behavior that wants expected inputs)."""
    return removal.apply_expected if getattr(behavior, "expected_input", False) else removal.apply


class _BatchBuffer:
    """A reusable ``[B, T, H, W, C]`` tensor (channel-first memory); ``take(n)`` gives ``n`` clips."""

    def __init__(self, clip: Tensor, batch_size: int) -> None:
        self._clip = clip
        self._batch_size = batch_size
        self._buf: Tensor | None = None

    def take(self, n: int) -> Tensor:
        if self._buf is None or self._buf.shape[0] < n:
            shape = (max(n, self._batch_size), *self._clip.shape)
            self._buf = channels_first_empty(shape, self._clip.dtype, self._clip.device)
        return self._buf[:n]


def _accepts_out(fn: Any) -> bool:
    try:
        return "out" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _cache_key(digest: str, recipe: Recipe, target: int) -> str:
    parts = [digest, str(target), str(recipe.seed)]
    for stage in ("segmentation", "removal", "behavior"):
        cfg = recipe.stage(stage)
        parts.append(cfg.model_dump_json() if cfg is not None else "-")
    return "|".join(parts)


def _split_rounds(chunks: Iterator[PlanChunk], round_size: int) -> Iterator[PlanChunk]:
    """``chunks`` cut at every multiple of ``round_size`` (no cut when it is 0)."""
    for start, z, w in chunks:
        pos, end = int(start), int(start) + int(z.shape[0])
        while pos < end:
            cut = min(end, (pos // round_size + 1) * round_size) if round_size else end
            lo, hi = pos - int(start), cut - int(start)
            yield PlanChunk(pos, z[lo:hi], None if w is None else w[lo:hi])
            pos = cut


def _check_adaptive(behavior: Behavior, summary: Summary, recipe: Recipe) -> None:
    """Adaptive sampling needs a summary that estimates its error and outputs known in plan order."""
    if getattr(behavior, "refines", False):
        raise ConfigError(
            f"Recipe {recipe.name!r}: the behavior {type(behavior).__name__} revises every output once all are "
            "known, so sampling cannot stop part-way (sample_selection: adaptive).",
            "Use sample_selection: {name: fixed, n_samples: N} with this behavior.",
        )
    if type(summary).estimate is Summary.estimate:
        raise ConfigError(
            f"Recipe {recipe.name!r}: the summary {type(summary).__name__} does not estimate the standard "
            "error of its values, which adaptive sample selection needs.",
            "Use sample_selection: adaptive with the summaries shapley, linear or mask_mean, or a fixed "
            "number of samples.",
        )


def _estimate(summary: Summary) -> tuple[Tensor, Tensor] | None:
    out = summary.estimate()
    if out is None:
        return None
    values, se = out
    return values.detach().double().cpu().reshape(-1), se.detach().double().cpu().reshape(-1)


def _check_sample_count(n: int | None, source: str) -> None:
    """More than :data:`MAX_SAMPLES` samples is a configuration error."""
    if n is not None and n > MAX_SAMPLES:
        raise ConfigError(
            f"{source} asks for {n:,} samples; at most {MAX_SAMPLES:,} are allowed.",
            "Use fewer samples (e.g. sample_selection: {name: fixed, n_samples: 1000}).",
        )


def _check_plan(plan: ChunkedPlan, n_features: int) -> None:
    """The plan's header: a ChunkedPlan of ``[S, F]`` with ``1 <= S <= MAX_SAMPLES``."""
    if not isinstance(plan, ChunkedPlan):
        raise PluginError(
            f"The feature selection returned a {type(plan).__name__}; expected a SamplePlan or another ChunkedPlan.",
            "A FeatureSelector.plan must return removalx.plans.SamplePlan(z, weights, meta) or a LazyPlan.",
        )
    if isinstance(plan, SamplePlan) and plan.z.dim() != 2:
        raise PluginError(
            f"The feature selection returned Z of shape {tuple(plan.z.shape)}; expected [S, {n_features}].",
            "A FeatureSelector.plan must return one column per feature.",
        )
    if plan.n_features != n_features:
        raise PluginError(
            f"The feature selection returned Z of shape {(plan.n_samples, plan.n_features)}; "
            f"expected [S, {n_features}].",
            "A FeatureSelector.plan must return one column per feature.",
        )
    if plan.n_samples == 0:
        raise PluginError(
            "The sample plan is empty (0 samples).", "Ask for at least one sample (sample_selection)."
        )
    _check_sample_count(plan.n_samples, "The feature selection's plan")
    if isinstance(plan, SamplePlan) and plan.weights is not None and plan.weights.shape != (plan.n_samples,):
        raise PluginError(
            f"Plan weights have shape {tuple(plan.weights.shape)}; expected [{plan.n_samples}]."
        )


def _checked_chunks(plan: ChunkedPlan, size: int) -> Iterator[PlanChunk]:
    """``plan.chunks(size)``, each checked: consecutive, ``[k, F]`` with ``k <= size``, weights ``[k]``."""
    n, f = plan.n_samples, plan.n_features
    expected = 0
    for start, z, w in plan.chunks(size):
        k = int(z.shape[0]) if z.dim() == 2 else -1
        most = min(size, n - expected)
        if int(start) != expected or z.dim() != 2 or z.shape[1] != f or not 1 <= k <= most:
            raise PluginError(
                f"The sample plan's chunk at row {int(start)} has Z of shape {tuple(z.shape)}; "
                f"expected a chunk at row {expected} of shape [k, {f}] with 1 <= k <= {most}.",
                "ChunkedPlan.chunks(size) must give consecutive chunks of at most `size` rows.",
            )
        if (w is not None) != plan.weighted or (w is not None and tuple(w.shape) != (k,)):
            got = "no weights" if w is None else f"weights of shape {tuple(w.shape)}"
            want = f"weights of shape [{k}]" if plan.weighted else "no weights (the plan is unweighted)"
            raise PluginError(f"The sample plan's chunk at row {expected} has {got}; expected {want}.")
        yield PlanChunk(expected, z, w)
        expected += k
    if expected != n:
        raise PluginError(
            f"The sample plan gave {expected} rows; its n_samples is {n}.",
            "ChunkedPlan.chunks must cover rows 0 .. n_samples - 1 exactly once.",
        )


def _plain(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The plain-data entries of a stage's ``meta``: scalars, short lists of scalars, and mappings
    of those (e.g. a SLIC retry record); tensors and other objects stay on the stage's object."""

    def plain(v: Any, depth: int) -> bool:
        if isinstance(v, (int, float, str, bool)):
            return True
        if isinstance(v, (list, tuple)):
            return len(v) <= 64 and all(isinstance(x, (int, float, str, bool)) for x in v)
        if isinstance(v, Mapping) and depth > 0:
            return all(isinstance(k, str) and plain(x, depth - 1) for k, x in v.items())
        return False

    return {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in meta.items() if plain(v, 1)}


_ONE_CLASS_FIX = (
    "For a binary classifier with one output, explain its logit (--set behavior.name=logit); "
    "otherwise return one logit per class."
)


def _check_behavior_sees_the_model(behavior: Behavior, logits: Tensor, target: int, model_name: str) -> None:
    """A single-class model whose behavior cannot change (a softmax over one class) is an error.

    Without this, every perturbed clip scores exactly 1 and the explanation is a constant map.
    """
    if logits.shape[-1] != 1:
        return
    with torch.inference_mode():
        shifted = torch.cat([logits, logits + 1.0, logits - 1.0])
        scores = behavior.score(shifted.float(), target)
    if bool((scores == scores[0]).all()):
        raise ModelError(
            f"Model {model_name} returns a single class, and the behavior {type(behavior).__name__} scores "
            "every output of such a model the same (a softmax over one class is always 1): the explanation "
            "would be a constant map.",
            _ONE_CLASS_FIX,
        )


def _check_output(y: Tensor, b: int) -> Tensor:
    if y.shape != (b,):
        raise PluginError(f"The behavior returned shape {tuple(y.shape)} for a batch of {b}; expected [{b}].")
    if not torch.isfinite(y).all():
        raise ModelError(
            "The model behavior is NaN or infinite for some perturbed clips.",
            "Check the model on perturbed (e.g. black) inputs and the behavior (log_odds of p=1 is inf).",
        )
    return y
