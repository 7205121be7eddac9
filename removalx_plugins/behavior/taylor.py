"""``taylor``: AOSA-approx, the first-order Taylor expansion of the model around the clip.

AOSA (Uchiyama et al.), Sec. 3.5. One forward and one backward pass at the clean clip ``x``
give ``f(x)`` and ``J = df/dx``; every perturbed clip ``g(x)`` is then scored without a
forward pass as ``f(x) + J . (g(x) - x)`` (Eq. 3-4). With a random removal that exposes
its expectation (``conditional``, Sec. 3.4) the perturbed clip is built with the expected
fill ``mu``, which gives the closed form of the averaged score,
``f(x) + J . (1 - m) * (mu - x)`` (Sec. 3.5.2, Eq. 7). Sec. 3.5.3: samples whose
difference ``f(x) - f_hat(g(x))`` lies outside ``1.5 x IQR`` of all differences are
re-expanded around another point -- the occluded clip of the most extreme sample above the
upper fence (resp. below the lower fence) -- at the cost of one forward and backward pass
per side.

The behavior works with any removal recipe (3D occlusion, superpixels, ...). It reports
the passes it used and saved in ``Attribution.meta["behavior"]``; the model's
``n_backward`` counter is increased by the backward passes.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import Tensor

from removalx.plugin import Behavior, BehaviorConfig, ModelError, VideoClassifier, hookimpl

__all__ = ["Taylor", "TaylorConfig"]


class TaylorConfig(BehaviorConfig):
    """Which score is linearised, and the two stabilisations of AOSA-approx."""

    score: Literal["probability", "logit", "log_odds"] = Field(
        "probability", description="score f expanded to first order (Sec. 3.5.1: the class score)"
    )
    expectation: bool = Field(
        True,
        description="use the removal's expected fill (closed form of conditional sampling, Sec. 3.5.2, Eq. 7)",
    )
    adjust: bool = Field(True, description="re-expand IQR outliers around another point (Sec. 3.5.3)")
    iqr_factor: float = Field(
        1.5, gt=0, description="outlier fence in IQRs (Sec. 3.5.3: 1.5); at most 100", le=100
    )
    chunk: int = Field(
        16,
        ge=1,
        description="clips rebuilt at once when re-expanding outliers; at most 4096",
        le=4096,
        strict=True,
    )


def _score(logits: Tensor, target: int, kind: str) -> Tensor:
    logits = logits.float()
    if kind == "logit":
        return logits[:, target]
    logp = logits.log_softmax(dim=-1)[:, target]
    if kind == "probability":
        return logp.exp()
    return logp - torch.log1p(-logp.exp().clamp_max(1.0 - 1e-7))


class Taylor(Behavior):
    """``f(x) + J . (g(x) - x)`` from one forward and one backward pass (AOSA-approx)."""

    refines = True

    def __init__(self, config: TaylorConfig) -> None:
        self.config = config
        self.expected_input = bool(config.expectation)
        self.refines = bool(config.adjust)
        self.meta: dict[str, float | int | str] = {}

    # -- linearisation -----------------------------------------------------------------------
    def _linearise(self, model: VideoClassifier, x: Tensor, target: int) -> tuple[Tensor, Tensor]:
        if not getattr(model, "differentiable", True):
            raise ModelError(
                "The taylor behavior (AOSA-approx) needs the gradient of the model, but the model "
                "is a plain callable.",
                "Wrap a differentiable nn.Module in removalx.VideoClassifier, or use behavior: probability.",
            )
        with torch.inference_mode(False), torch.enable_grad():
            xg = x.detach().clone().requires_grad_(True)
            s = _score(model(xg[None]), target, self.config.score)[0]
            (g,) = torch.autograd.grad(s, xg)
        model.n_backward += 1
        self._n_fwd += 1
        self._n_bwd += 1
        return s.detach(), g.detach()

    def begin(self, model: VideoClassifier, video: Tensor, target: int) -> None:
        self._n_fwd = self._n_bwd = self._n_approx = 0
        self.x = video.detach()
        self.f0, self.grad = self._linearise(model, self.x, target)
        self._update_meta(0)

    def evaluate(self, model: VideoClassifier, batch: Tensor, target: int) -> Tensor:
        """Eq. 4 for every clip of the batch (no forward pass)."""
        self._n_approx += int(batch.shape[0])
        delta = batch.to(self.grad.dtype) - self.x
        y = self.f0 + torch.einsum("bthwc,thwc->b", delta, self.grad)
        self._update_meta(int(self.meta.get("n_relinearised", 0)))
        return y

    def score(self, logits: Tensor, target: int) -> Tensor:
        return _score(logits, target, self.config.score)

    # -- Sec. 3.5.3 ------------------------------------------------------------------------
    def refine(self, model, video, target, y, perturb):  # type: ignore[no-untyped-def]
        """Re-expand the ``1.5 x IQR`` outliers of ``f(x) - f_hat`` around the most extreme one."""
        y = y.clone().float()
        if y.numel() < 4:
            return y
        d = float(self.f0) - y
        q1, q3 = torch.quantile(d.double(), torch.tensor([0.25, 0.75], dtype=torch.float64)).tolist()
        iqr = q3 - q1
        upper, lower = q3 + self.config.iqr_factor * iqr, q1 - self.config.iqr_factor * iqr
        n_re = 0
        for group, pick in ((d > upper, torch.argmax), (d < lower, torch.argmin)):
            idx = group.nonzero().flatten()
            if idx.numel() == 0:
                continue
            a = idx[pick(d[idx])].reshape(1)
            xa = perturb(a)[0].detach()
            fa, ja = self._linearise(model, xa, target)
            for start in range(0, idx.numel(), self.config.chunk):
                part = idx[start : start + self.config.chunk]
                with torch.no_grad():
                    delta = perturb(part).to(ja.dtype) - xa
                    y[part] = (fa + torch.einsum("bthwc,thwc->b", delta, ja)).float().cpu()
            n_re += int(idx.numel())
        self.meta["iqr_fences"] = f"[{lower:.4g}, {upper:.4g}]"
        self._update_meta(n_re)
        return y

    def _update_meta(self, n_re: int) -> None:
        self.meta.update(
            method="taylor",
            n_approximated=self._n_approx,
            n_relinearised=n_re,
            n_forward_used=self._n_fwd,
            n_backward_used=self._n_bwd,
            n_forward_saved=self._n_approx - self._n_fwd,
        )


@hookimpl
def removalx_register_behaviors(registry):  # type: ignore[no-untyped-def]
    registry.add("taylor", TaylorConfig, Taylor)
