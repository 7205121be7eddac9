"""The output cache: model outputs of a run, kept for a later run that differs only after them.

Outputs are keyed by (plan, removal, behavior, target): a second run that changes only the
summary or the visualization reads them instead of running the model (no forward pass).
Keeping them costs 4 bytes per sample, and only when a ``cache`` is given.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import torch
from torch import Tensor

from removalx.core.recipe import Recipe

__all__ = ["OutputCache", "cache_key"]


def cache_key(digest: str, recipe: Recipe, target: int) -> str:
    """The key of a run's outputs: plan digest, target, seed and the stages before the summary."""
    parts = [digest, str(target), str(recipe.seed)]
    for stage in ("segmentation", "removal", "behavior"):
        cfg = recipe.stage(stage)
        parts.append(cfg.model_dump_json() if cfg is not None else "-")
    return "|".join(parts)


class OutputCache:
    """The outputs of one run in the caller's ``cache`` (``None``: no cache).

    ``hit`` holds the stored outputs when an earlier run left them; otherwise, with a
    ``cache``, :meth:`record` keeps every output and :meth:`store` saves them at the end.
    """

    def __init__(self, cache: MutableMapping[str, Any] | None, key: str | None, n_samples: int) -> None:
        self.cache = cache
        self.key = key
        self.hit: Any = cache.get(key) if cache is not None and key is not None else None
        keep = key is not None and self.hit is None
        self._ys = torch.empty(n_samples, dtype=torch.float32) if keep else None

    @classmethod
    def open(
        cls,
        cache: MutableMapping[str, Any] | None,
        digest: str,
        recipe: Recipe,
        target: int,
        n_samples: int,
    ) -> OutputCache:
        """The cache entry of a run of ``recipe`` on the plan ``digest`` for ``target``."""
        key = cache_key(digest, recipe, target) if cache is not None else None
        return cls(cache, key, n_samples)

    @property
    def cached(self) -> bool:
        """Whether the outputs come from the cache (no forward pass for the samples)."""
        return self.hit is not None

    def known(self, start: int, stop: int) -> Tensor | None:
        """Stored outputs of samples ``start:stop`` (``None``: not cached)."""
        return None if self.hit is None else self.hit["y"][start:stop]

    def known_base(self, case: str) -> Tensor | None:
        """Stored output ``[1]`` of base case ``case`` (``None``: not cached)."""
        return None if self.hit is None else self.hit["base"][case].reshape(1)

    def record(self, start: int, stop: int, y: Tensor) -> None:
        """Keep the outputs of samples ``start:stop`` (only when they are to be stored)."""
        if self._ys is not None:
            self._ys[start:stop] = y.float().cpu()

    def store(self, base: dict[str, float]) -> None:
        """Save the recorded outputs and the base cases in the cache."""
        if self.cache is not None and self.key is not None and self._ys is not None:
            self.cache[self.key] = {"y": self._ys, "base": {k: torch.tensor(v) for k, v in base.items()}}
