"""``aosa_map``: the AOSA saliency map built from the occluded clips' scores.

AOSA (Uchiyama et al.), Sec. 3.2, Eq. 2, "with reference to RISE", weights each
(integrated) keep-mask ``keep_i`` (1 = kept, 0 = occluded) by the model's score
``y_i = f(keep_i * V)`` on the occluded clip. Three formulas, ``formula``:

``eq2_literal`` -- Eq. 2 as printed::

    S(p) = 1/N sum_i y_i keep_i(p)

With uneven coverage (frame-outs, Sec. 3.3; overlapping integrated masks, Sec. 3.2) it
ranks the pixels no mask occluded highest (they collect every ``y_i``), which contradicts
the paper's own reading of the map ("the occluded regions are important if the output
score becomes low").

``eq2_centred`` (default) -- Eq. 2 as the authors' released code computes it: the score
*change* ``y_i - f(x)`` weights the keep-mask, and each mask is divided by the fraction of
the clip it keeps (RISE's ``1 / E[M]``)::

    S(p) = 1/N sum_i (y_i - f(x)) keep_i(p) / mean(keep_i)

A pixel no mask occluded gets the constant ``1/N sum_i (y_i - f(x)) / mean(keep_i)``; each
mask that occludes ``p`` adds ``(f(x) - y_i) / (N mean(keep_i))`` above it. As the released
code does, the map is then mapped linearly onto the range of the score drops,
``[min_i d_i, max_i d_i]`` with ``d_i = f(x) - y_i`` (its minimum to the smallest drop, its
maximum to the largest), so values are in score units and positive where masks dropped the
score (the code's last step, a division by the largest magnitude for its colour map, is left
to the visualization). With ``draws`` (several rows per mask) ``d_i`` is the mask's drop
averaged over its draws.

``occlusion_difference`` -- a removalx variant: the mean score drop over the masks that
occlude ``p`` (0 where none does)::

    S(p) = sum_i (f(x) - y_i) (1 - keep_i(p)) / sum_i (1 - keep_i(p))

``normalize: n`` divides the same sum by ``N`` instead of by the coverage (only for this
formula). On a partition with ``leave_one_out`` it equals ``difference`` with ``base: full``.

Feature values apply the same formula to the coalitions ``z_i`` (one entry per feature in
place of one per pixel). Streaming: one ``T x H x W`` accumulator (two for
``occlusion_difference``) and ``F``-sized sums, independent of the number of samples.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import Tensor

from removalx.plugin import ChunkedPlan, ConfigError, FeatureSpace, PluginConfig, Summary, hookimpl

__all__ = ["AosaMap", "AosaMapConfig"]

Formula = Literal["eq2_centred", "eq2_literal", "occlusion_difference"]


class AosaMapConfig(PluginConfig):
    """Which formula turns the scores of the occluded clips into a map."""

    formula: Formula = Field(
        "eq2_centred",
        description="'eq2_centred': Eq. 2 with the score change and 1/mean(keep) per mask (the authors' "
        "code); 'eq2_literal': Eq. 2 as printed, 1/N sum_i y_i keep_i; 'occlusion_difference': mean "
        "score drop over the masks occluding each pixel (removalx variant)",
    )
    normalize: Literal["coverage", "n"] = Field(
        "coverage",
        description="occlusion_difference only: divide by the occlusion count per pixel ('coverage') "
        "or by the number of samples ('n')",
    )


class AosaMap(Summary):
    """The AOSA map: Eq. 2 (literal or as the authors' code computes it) or the occlusion difference."""

    requires = ("full",)
    needs_keep = True

    def __init__(self, config: AosaMapConfig) -> None:
        if config.normalize != "coverage" and config.formula != "occlusion_difference":
            raise ConfigError(
                f"aosa_map: normalize={config.normalize!r} applies to formula 'occlusion_difference' only, "
                f"but formula is {config.formula!r}.",
                "Drop summary.normalize, or set summary.formula=occlusion_difference.",
            )
        self.config = config

    def begin(self, space: FeatureSpace, plan: ChunkedPlan, base: dict[str, float]) -> None:
        self.ref = float(base["full"])
        self.acc: Tensor | None = None
        self.cover: Tensor | None = None
        self.facc = torch.zeros(space.n_features, dtype=torch.float64)
        self.fcnt = torch.zeros(space.n_features, dtype=torch.float64)
        self.n = 0
        # range of the per-mask drops (rows of one mask are consecutive: plan.meta["draws"])
        self.draws = max(1, int(getattr(plan, "meta", {}).get("draws", 1) or 1))
        # float64 0-d tensors on the batch's device (no host-device sync per batch): the running
        # min / max of the per-mask mean drop and the partial sum of a group spanning batches
        self.group_sum = torch.zeros((), dtype=torch.float64)
        self.group_n = 0
        self.dmin = torch.full((), float("inf"), dtype=torch.float64)
        self.dmax = torch.full((), float("-inf"), dtype=torch.float64)
        self.drop_min = float("inf")  # floats of dmin / dmax, set by finalize
        self.drop_max = float("-inf")

    def update(self, z: Tensor, keep: Tensor | None, y: Tensor, weights: Tensor | None) -> None:
        assert keep is not None  # needs_keep guarantees it
        keep = keep.float()
        # float64 feature sums on the CPU, or on the batch's CUDA device without a copy back per
        # batch (a host-device sync); the same operations in the same order on the CPU
        dev = y.device if y.device.type == "cuda" else torch.device("cpu")
        self.facc, self.fcnt = self.facc.to(dev), self.fcnt.to(dev)
        zc = z.to(dev, torch.float64)
        formula = self.config.formula
        if formula == "occlusion_difference":
            d = self.ref - y.float()
            occ = 1.0 - keep
            self._add(torch.einsum("b,bthw->thw", d, occ), occ.sum(0))
            removed = 1.0 - zc
            self.facc += removed.T @ d.double().to(dev)
            self.fcnt += removed.sum(0)
        else:
            w = y.double() if formula == "eq2_literal" else y.double() - self.ref
            wz = w.to(dev)
            if formula == "eq2_centred":
                kept = keep.double().flatten(1).mean(1)  # fraction of the clip each mask keeps
                w = torch.where(kept > 0, w / kept.clamp_min(1e-300), torch.zeros_like(w))
                zk = zc.mean(1)
                wz = torch.where(zk > 0, wz / zk.clamp_min(1e-300), torch.zeros_like(wz))
            self._add(torch.einsum("b,bthw->thw", w.to(keep.dtype), keep), None)
            self.facc += zc.T @ wz
        self.n += int(y.shape[0])
        self._track_drops(y, dev)

    def _track_drops(self, y: Tensor, dev: torch.device) -> None:
        """Running min / max of the drops ``f(x) - y`` averaged over each mask's ``draws`` rows.

        Tensor operations on ``dev`` only (no host-device sync). A group's sum is taken left to
        right, one of its ``draws`` positions at a time (``((0 + d_1) + d_2) + ...``, the order of
        a running sum), whichever batches its rows arrive in; its mean is that sum over ``draws``.
        """
        if self.config.formula != "eq2_centred":
            return
        d = self.ref - y.to(dev, torch.float64)
        self.dmin, self.dmax, self.group_sum = self.dmin.to(dev), self.dmax.to(dev), self.group_sum.to(dev)
        if self.draws == 1:
            means = d
        else:
            head = min(self.draws - self.group_n, int(d.shape[0])) if self.group_n else 0
            for j in range(head):  # complete the group carried over from the previous batch
                self.group_sum = self.group_sum + d[j]
            self.group_n += head
            parts = []
            if self.group_n == self.draws:
                parts.append((self.group_sum / self.draws).reshape(1))
                self.group_sum, self.group_n = torch.zeros_like(self.group_sum), 0
            rest = d[head:]
            n_full = int(rest.shape[0]) // self.draws
            groups = rest[: n_full * self.draws].reshape(n_full, self.draws)
            sums = torch.zeros(n_full, dtype=torch.float64, device=dev)
            for j in range(self.draws):  # running sums of the whole groups, position by position
                sums = sums + groups[:, j]
            parts.append(sums / self.draws)
            for j in range(n_full * self.draws, int(rest.shape[0])):  # a group left open for the next batch
                self.group_sum = self.group_sum + rest[j]
                self.group_n += 1
            means = torch.cat(parts)
        if means.numel():
            self.dmin = torch.minimum(self.dmin, means.min())
            self.dmax = torch.maximum(self.dmax, means.max())

    def _rescale(self, a: Tensor) -> Tensor:
        """``a`` mapped linearly onto ``[drop_min, drop_max]`` (the authors' code's map range)."""
        lo, hi = float(a.min()), float(a.max())
        if not hi > lo or not self.drop_max >= self.drop_min:
            return torch.full_like(a, self.drop_min if self.drop_min == self.drop_max else 0.0)
        return self.drop_min + (a - lo) / (hi - lo) * (self.drop_max - self.drop_min)

    def _add(self, acc: Tensor, cover: Tensor | None) -> None:
        acc = acc.double()
        self.acc = acc if self.acc is None else self.acc + acc
        if cover is not None:
            cover = cover.double()
            self.cover = cover if self.cover is None else self.cover + cover

    def finalize(self, space: FeatureSpace) -> tuple[Tensor, Tensor]:
        assert self.acc is not None
        self.facc, self.fcnt = self.facc.cpu(), self.fcnt.cpu()
        self.drop_min, self.drop_max = float(self.dmin), float(self.dmax)
        if self.config.formula == "occlusion_difference" and self.config.normalize == "coverage":
            assert self.cover is not None
            values = torch.where(
                self.cover > 0, self.acc / self.cover.clamp_min(1e-12), torch.zeros_like(self.acc)
            )
            fv = torch.where(
                self.fcnt > 0, self.facc / self.fcnt.clamp_min(1e-12), torch.zeros_like(self.facc)
            )
        else:
            values = self.acc / max(self.n, 1)
            fv = self.facc / max(self.n, 1)
            if self.config.formula == "eq2_centred":
                values, fv = self._rescale(values), self._rescale(fv)
        return values.float(), fv.float()


@hookimpl
def removalx_register_summaries(registry):  # type: ignore[no-untyped-def]
    registry.add("aosa_map", AosaMapConfig, AosaMap)
