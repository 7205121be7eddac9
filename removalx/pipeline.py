"""The streaming removal pipeline and the public :class:`Explainer` (DESIGN.md §5).

plan -> batches of keep-masks rendered on the model's device -> perturbed clips ->
model behavior -> streaming summary. Only one batch of perturbed clips exists at a time,
so memory does not grow with the number of samples.
"""

from __future__ import annotations

import inspect
import os
import time
from collections.abc import Iterable, Mapping, MutableMapping
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from removalx.errors import ModelError, PluginError
from removalx.io import validate_video
from removalx.models import VideoClassifier, as_classifier
from removalx.recipe import Recipe, load_recipe
from removalx.registry import Registry, get_registry
from removalx.stages import Behavior, Removal, Summary, channels_first_empty
from removalx.types import Attribution, FeatureSpace, SamplePlan

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
        Show a progress bar over forward passes.

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
    ) -> None:
        self.recipe = recipe
        self.registry = registry or get_registry()
        self.batch_size = batch_size or recipe.batch_size
        self.progress = progress

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
    ) -> Explainer:
        """Load ``recipe`` (built-in name, YAML path, mapping) with overrides and seed."""
        registry = registry or get_registry()
        r = load_recipe(recipe, overrides=overrides, seed=seed, registry=registry)
        return cls(r, registry=registry, batch_size=batch_size, progress=progress)

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
        target: int | None = None,
        *,
        batch_size: int | None = None,
        progress: bool | None = None,
        cache: MutableMapping[str, Any] | None = None,
    ) -> Attribution:
        """Explain ``model``'s prediction of ``target`` on ``video``.

        Parameters
        ----------
        model : VideoClassifier, nn.Module or callable
            A ``VideoClassifier``; an ``nn.Module`` (assumed ``BCTHW``, no normalisation);
            or a callable ``float[B, T, H, W, C] -> logits [B, K]``.
        video : Tensor or ndarray
            ``float32[T, H, W, C]`` in [0, 1].
        target : int, optional
            Class to explain; ``None`` = the model's top class on the clean clip.
        batch_size : int, optional
            Overrides the explainer's batch size for this call.
        progress : bool, optional
            Overrides the explainer's progress setting for this call.
        cache : dict, optional
            Model outputs keyed by (plan, removal, behavior, target); a second run that
            changes only the summary or the visualization reuses them (no forward pass).

        Returns
        -------
        Attribution
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
        return attr

    # -- the seven stages ----------------------------------------------------------------
    def _run_pipeline(
        self,
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
            n = self._make("sample_selection").n_samples(space.n_features, fsel)
            plan: SamplePlan = fsel.plan(space.n_features, n, gen)
            _check_plan(plan, space.n_features)
        removal: Removal = self._make("removal")
        behavior: Behavior = self._make("behavior")
        summary: Summary = self._make("summary")
        with timer("perturb"):
            removal.prepare(clip_d, space, self.seed)
        behavior.begin(clf, clip_d, target)

        bs = batch_size or self.batch_size or default_batch_size(clip, device)
        key = _cache_key(plan, self.recipe, target) if cache is not None else None
        cached = cache.get(key) if cache is not None and key is not None else None
        grad_ctx = nullcontext() if behavior.needs_grad else torch.inference_mode()
        apply = removal.apply_expected if getattr(behavior, "expected_input", False) else removal.apply
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
        for i, case in enumerate(summary.requires):
            if case == "full" and scores_logits:
                base[case] = float(behavior.score(clean_logits, target)[0])
                continue
            z = torch.full((1, space.n_features), 1.0 if case == "full" else 0.0, device=device)
            idx = torch.full((1,), -1 - i, dtype=torch.long, device=device)
            known = None if cached is None else cached["base"][case].reshape(1)
            base[case] = float(run(z, idx, known)[1][0])
        summary.begin(space, plan, base)

        refined: Tensor | None = None
        if cached is None and getattr(behavior, "refines", False):
            # Behaviors that revise outputs once all are known (AOSA-approx's IQR step) see
            # every y before the summary does; the summary then streams the revised values.
            refined = torch.empty(plan.n_samples, dtype=torch.float32)
            for start in range(0, plan.n_samples, bs):
                stop = min(start + bs, plan.n_samples)
                z = plan.z[start:stop].to(device, torch.float32)
                refined[start:stop] = run(z, torch.arange(start, stop, device=device), None)[1].float().cpu()

            def perturb(index: Tensor) -> Tensor:
                index = index.to(device, torch.long)
                with torch.no_grad():
                    keep = space.render(plan.z[index.cpu()].to(device, torch.float32), index)
                    return apply(clip_d, keep, index)

            with timer("model"):
                refined = _check_output(behavior.refine(clf, clip_d, target, refined, perturb), plan.n_samples)
                refined = refined.detach().float().cpu()

        ys = torch.empty(plan.n_samples, dtype=torch.float32)
        bar = tqdm(
            total=plan.n_samples,
            desc=f"{self.recipe.name}: forward passes" if cached is None else f"{self.recipe.name}: cached",
            unit="clip",
            disable=not show,
            leave=False,
        )
        with bar:
            for start in range(0, plan.n_samples, bs):
                stop = min(start + bs, plan.n_samples)
                z = plan.z[start:stop].to(device, torch.float32)
                idx = torch.arange(start, stop, device=device)
                w = None if plan.weights is None else plan.weights[start:stop].to(device)
                known = None if cached is None else cached["y"][start:stop]
                if refined is not None:
                    known = refined[start:stop]
                keep, y = run(z, idx, known)
                with timer("summary"):
                    summary.update(z, keep if summary.needs_keep else None, y, w)
                ys[start:stop] = y.float().cpu()
                bar.update(stop - start)
        with timer("summary"):
            values, feature_values = summary.finalize(space)
        if cache is not None and key is not None and cached is None:
            cache[key] = {"y": ys, "base": {k: torch.tensor(v) for k, v in base.items()}}
        meta: dict[str, Any] = {
            "timings": dict(timer.times),
            "n_samples": plan.n_samples,
            "n_features": space.n_features,
            "plan_digest": plan.digest(),
            "batch_size": bs,
            "base": base,
            "plan": {k: v for k, v in plan.meta.items() if isinstance(v, (int, float, str, bool))},
            "lower_is_important": summary.lower_is_important,
            "cached_outputs": cached is not None,
        }
        for name, stage in (("behavior", behavior), ("summary", summary)):
            if isinstance(getattr(stage, "meta", None), dict) and stage.meta:
                meta[name] = dict(stage.meta)
        return Attribution(values=values, feature_values=feature_values, target=target, space=space, meta=meta)


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


def _cache_key(plan: SamplePlan, recipe: Recipe, target: int) -> str:
    parts = [plan.digest(), str(target), str(recipe.seed)]
    for stage in ("segmentation", "removal", "behavior"):
        cfg = recipe.stage(stage)
        parts.append(cfg.model_dump_json() if cfg is not None else "-")
    return "|".join(parts)


def _check_plan(plan: SamplePlan, n_features: int) -> None:
    z = plan.z
    if z.dim() != 2 or z.shape[1] != n_features:
        raise PluginError(
            f"The feature selection returned Z of shape {tuple(z.shape)}; expected [S, {n_features}].",
            "A FeatureSelector.plan must return one column per feature.",
        )
    if z.shape[0] == 0:
        raise PluginError(
            "The sample plan is empty (0 samples).", "Ask for at least one sample (sample_selection)."
        )
    if plan.weights is not None and plan.weights.shape != (z.shape[0],):
        raise PluginError(f"Plan weights have shape {tuple(plan.weights.shape)}; expected [{z.shape[0]}].")


def _check_output(y: Tensor, b: int) -> Tensor:
    if y.shape != (b,):
        raise PluginError(f"The behavior returned shape {tuple(y.shape)} for a batch of {b}; expected [{b}].")
    if not torch.isfinite(y).all():
        raise ModelError(
            "The model behavior is NaN or infinite for some perturbed clips.",
            "Check the model on perturbed (e.g. black) inputs and the behavior (log_odds of p=1 is inf).",
        )
    return y
