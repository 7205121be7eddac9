"""Sample plans: the coalitions to evaluate, read in chunks.

A plan is what feature selection x sample selection produce: ``S`` coalitions
``z in {0,1}^F`` (1 = keep) and optional per-sample weights. The pipeline never holds a
whole plan: it reads it with :meth:`ChunkedPlan.chunks` in chunks of at most the batch size,
so memory is ``O(batch x F)`` whatever ``S`` is.

* :class:`SamplePlan` -- a materialised plan (``z float[S, F]`` in memory); its chunks
  are slices. Simple selectors and third-party selectors return it.
* :class:`LazyPlan` -- a plan whose rows are produced on demand (``bernoulli`` sampling),
  for plans too large to hold.
* :class:`ComputedPlan` -- a lazy plan whose row ``i`` is a function of ``i`` (every
  coalition, leave-one-out, AOSA's integrated masks).
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch
from torch import Tensor

from removalx.errors import PluginError

__all__ = [
    "SCAN_ELEMENTS",
    "ChunkedPlan",
    "ComputedPlan",
    "LazyPlan",
    "PlanChunk",
    "SamplePlan",
    "SizedLazyPlan",
    "UnweightedLazyPlan",
    "check_chunk_size",
    "checked_rows",
]

#: Coalition entries per chunk when a plan is scanned outside the pipeline
#: (:meth:`ChunkedPlan.digest`, :meth:`ChunkedPlan.rows`): 4 MiB of ``float32``.
SCAN_ELEMENTS = 2**20


class PlanChunk(NamedTuple):
    """Rows ``start .. start + len(z) - 1`` of a plan.

    Attributes
    ----------
    start : int
        Position of the first row in the plan.
    z : Tensor
        ``float[k, F]`` in ``{0, 1}`` (1 = keep), on the CPU.
    weights : Tensor or None
        ``float[k]`` weights of these rows, ``None`` for an unweighted plan.
    """

    start: int
    z: Tensor
    weights: Tensor | None


def _scan_rows(n_features: int) -> int:
    return max(1, SCAN_ELEMENTS // max(n_features, 1))


class ChunkedPlan(ABC):
    """The coalitions to evaluate, read chunk by chunk (feature selection x sample selection).

    Subclasses implement :attr:`n_samples`, :attr:`n_features`, :attr:`weighted` and
    :meth:`chunks`; :meth:`digest`, :meth:`rows` and :meth:`materialize` are built on
    :meth:`chunks`. Reading a plan twice must give the same rows.

    Attributes
    ----------
    meta : dict
        What the selector wants the summary to know (``p`` of Bernoulli sampling,
        ``exhaustive``, the number of distinct coalitions, ...).
    """

    meta: dict[str, Any]

    @property
    @abstractmethod
    def n_samples(self) -> int:
        """Number of rows ``S``."""

    @property
    @abstractmethod
    def n_features(self) -> int:
        """Number of columns ``F``."""

    @property
    @abstractmethod
    def weighted(self) -> bool:
        """True when every chunk carries weights."""

    @abstractmethod
    def chunks(self, size: int) -> Iterator[PlanChunk]:
        """Consecutive chunks of at most ``size`` rows, from row 0 to the last.

        Parameters
        ----------
        size : int
            Largest number of rows per chunk (at least 1). Every chunk but the last has
            exactly ``size`` rows in the built-in plans; the pipeline checks the bound.

        Yields
        ------
        PlanChunk
            ``(start, z float[k, F], weights float[k] or None)`` on the CPU.
        """

    def digest(self) -> str:
        """A short hash of ``z`` and ``weights``: equal plans give equal digests.

        Computed in one pass over the chunks (two for weighted plans, which hash all rows of
        ``z`` before the weights), so memory does not depend on :attr:`n_samples`; a
        :class:`SamplePlan` and a :class:`LazyPlan` with the same rows have the same digest.
        """
        h = hashlib.sha256()
        h.update(str((self.n_samples, self.n_features)).encode())
        size = _scan_rows(self.n_features)
        for chunk in self.chunks(size):
            h.update(chunk.z.detach().cpu().to(torch.float32).contiguous().numpy().tobytes())
        if self.weighted:
            for chunk in self.chunks(size):
                if chunk.weights is None:
                    raise PluginError(
                        f"The sample plan's chunk at row {int(chunk.start)} has no weights; expected weights "
                        "(the plan is weighted).",
                        "ChunkedPlan.chunks must give weights with every chunk when `weighted` is true.",
                    )
                h.update(chunk.weights.detach().cpu().to(torch.float64).contiguous().numpy().tobytes())
        return h.hexdigest()[:16]

    def rows(self, index: Tensor) -> tuple[Tensor, Tensor | None]:
        """Rows ``index`` (``long[n]``) of ``z`` and of the weights (``None`` if unweighted).

        The default scans the plan chunk by chunk: ``O(S)`` time, memory ``O(n x F)`` plus one
        chunk. Used to rebuild a few perturbed clips after the fact (AOSA-approx's refinement).
        """
        index = checked_rows(index, self.n_samples)
        f = self.n_features
        z = torch.zeros(index.numel(), f)
        w = torch.zeros(index.numel()) if self.weighted else None
        if index.numel() == 0:
            return z, w
        for start, zc, wc in self.chunks(_scan_rows(f)):
            hit = ((index >= start) & (index < start + zc.shape[0])).nonzero().flatten()
            if hit.numel():
                local = index[hit] - start
                z[hit] = zc[local].to(z.dtype)
                if w is not None and wc is not None:
                    w[hit] = wc[local].to(w.dtype)
        return z, w

    def materialize(self) -> SamplePlan:
        """The whole plan in memory (``O(S x F)``: for tests and small plans)."""
        parts = list(self.chunks(_scan_rows(self.n_features)))
        z = torch.cat([c.z for c in parts]) if parts else torch.zeros(0, self.n_features)
        w = torch.cat([c.weights for c in parts if c.weights is not None]) if self.weighted else None
        return SamplePlan(z, w, meta=dict(self.meta))


@dataclass
class SamplePlan(ChunkedPlan):
    """A materialised plan: its chunks are slices of ``z`` and ``weights``.

    Attributes
    ----------
    z : Tensor
        ``float[S, F]`` in ``{0, 1}`` (1 = keep), on the CPU.
    weights : Tensor or None
        ``float[S]`` per-sample weights (e.g. Kernel SHAP kernel mass), or ``None``.
    meta : dict
        What the selector wants the summary to know (``p`` of Bernoulli sampling,
        ``exhaustive``, the number of distinct coalitions, ...).
    """

    z: Tensor
    weights: Tensor | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_samples(self) -> int:
        return int(self.z.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.z.shape[1])

    @property
    def weighted(self) -> bool:
        return self.weights is not None

    def chunks(self, size: int) -> Iterator[PlanChunk]:
        size = check_chunk_size(size)
        for start in range(0, self.n_samples, size):
            stop = start + size
            w = None if self.weights is None else self.weights[start:stop]
            yield PlanChunk(start, self.z[start:stop], w)

    def rows(self, index: Tensor) -> tuple[Tensor, Tensor | None]:
        index = index.detach().cpu().long()
        return self.z[index], None if self.weights is None else self.weights[index]

    def materialize(self) -> SamplePlan:
        return self


class LazyPlan(ChunkedPlan):
    """A plan whose rows are produced on demand, chunk by chunk.

    Subclasses implement :meth:`chunks` (and the three properties); every reading must give
    the same rows, e.g. by restarting a random stream from a state saved when the plan was
    made. :attr:`z` and :attr:`weights` exist for code written against :class:`SamplePlan`:
    they materialise the whole plan (``O(S x F)`` memory) at every access, and the
    pipeline never uses them.
    """

    @property
    def z(self) -> Tensor:
        """``float[S, F]``: every row, materialised."""
        return self.materialize().z

    @property
    def weights(self) -> Tensor | None:
        """``float[S]`` or ``None``: every weight, materialised."""
        return self.materialize().weights

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_samples={self.n_samples}, n_features={self.n_features}, meta={self.meta})"


class SizedLazyPlan(LazyPlan):
    """A lazy plan that keeps its shape ``S x F`` in ``_n`` and ``_f``.

    Subclasses set both (and :attr:`meta`) when they are made and implement :attr:`weighted`
    and :meth:`chunks`.
    """

    _n: int
    _f: int

    @property
    def n_samples(self) -> int:
        return self._n

    @property
    def n_features(self) -> int:
        return self._f


class UnweightedLazyPlan(SizedLazyPlan):
    """A lazy plan of known shape and no weights; subclasses implement :meth:`chunks`.

    Parameters
    ----------
    n_samples, n_features : int
        Shape ``S x F`` of the plan.
    meta : dict, optional
        What the summary should know.
    """

    def __init__(self, n_samples: int, n_features: int, meta: dict[str, Any] | None = None) -> None:
        self._n, self._f = int(n_samples), int(n_features)
        self.meta = dict(meta or {})

    @property
    def weighted(self) -> bool:
        return False


class ComputedPlan(UnweightedLazyPlan):
    """An unweighted lazy plan whose rows are computed from their positions.

    Parameters
    ----------
    n_samples, n_features : int
        Shape ``S x F`` of the plan.
    make : callable
        ``make(index long[k]) -> float[k, F]``: the rows at positions ``index`` (a pure
        function of ``index``, so chunks and :meth:`rows` agree).
    meta : dict, optional
        What the summary should know.
    """

    def __init__(
        self,
        n_samples: int,
        n_features: int,
        make: Callable[[Tensor], Tensor],
        meta: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(n_samples, n_features, meta)
        self._make = make

    def chunks(self, size: int) -> Iterator[PlanChunk]:
        size = check_chunk_size(size)
        for start in range(0, self._n, size):
            yield PlanChunk(start, self._make(torch.arange(start, min(start + size, self._n))), None)

    def rows(self, index: Tensor) -> tuple[Tensor, Tensor | None]:
        return self._make(checked_rows(index, self._n)), None


def check_chunk_size(size: int) -> int:
    """``size`` as an int, or a ``ValueError`` when it is below 1."""
    if int(size) < 1:
        raise ValueError(f"chunk size must be at least 1, got {size}")
    return int(size)


def checked_rows(index: Tensor, n_samples: int) -> Tensor:
    """``index`` as a flat ``long`` CPU tensor, or an ``IndexError`` when a row is outside ``0 .. S-1``."""
    index = index.detach().cpu().long().reshape(-1)
    if index.numel() and (int(index.min()) < 0 or int(index.max()) >= n_samples):
        raise IndexError(
            f"plan rows {int(index.min())}..{int(index.max())} requested from a plan of {n_samples} rows"
        )
    return index
