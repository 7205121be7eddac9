"""``integrated_gradients``: Integrated Gradients (STEP journal, Sec. V-B, Eq. 24).

``IG(X) = (X - Xbar) (.) (1/m) sum_{k=1..m} dPhi_c(Xbar + k/m (X - Xbar)) / dX`` -- the
right Riemann sum of Eq. 24, which is Captum's ``IntegratedGradients`` with
``method="riemann_right"``; ``m = 50`` and a black baseline as the journal (after
Sundararajan et al.) sets. Completeness: ``sum(values) ~= Phi_c(X) - Phi_c(Xbar)`` with the
default ``channel_reduction="sum"``; Captum's convergence delta is in ``meta["delta"]``.
The STEP authors' code sums over ``k = 0..m-1`` (``method="riemann_left"``); the ``ig``
recipe keeps Eq. 24 and takes their ``|.|``-mean over channels and [0, 1] normalisation.
IG does not depend on the input space: ``(X - Xbar) dPhi/dX`` is the same in pixel and in
normalised units.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import torch
from pydantic import Field
from torch import Tensor

from removalx.plugin import hookimpl
from removalx_plugins.machinery.gradients import (
    InputMapConfig,
    InputMapExplainer,
    integrated_gradients,
    reduce_channels,
)

if TYPE_CHECKING:
    from removalx.plugin import VideoClassifier


class IGConfig(InputMapConfig):
    """Integrated Gradients settings (Eq. 24)."""

    steps: int = Field(
        50,
        gt=1,
        description="m, the number of path points in Eq. 24 (journal: 50); at most 10,000",
        le=10_000,
        strict=True,
    )
    baseline: float = Field(
        0.0, ge=0, le=1, description="Xbar of Eq. 24 as a constant pixel value (0 = black)"
    )
    method: Literal[
        "riemann_right", "riemann_left", "riemann_middle", "riemann_trapezoid", "gausslegendre"
    ] = Field(
        "riemann_right",
        description="quadrature; riemann_right: Eq. 24's k = 1..m; riemann_left: k = 0..m-1 (STEP code)",
    )


class IntegratedGradients(InputMapExplainer[IGConfig]):
    """Integrated Gradients from a constant (black) baseline (Eq. 24)."""

    name = "integrated_gradients"

    def attribute(
        self, model: VideoClassifier, video: Tensor, target: int, generator: torch.Generator
    ) -> tuple[Tensor, dict[str, Any]]:
        cfg = self.config
        attr, delta = integrated_gradients(
            model,
            video,
            target,
            steps=cfg.steps,
            baseline=cfg.baseline,
            method=cfg.method,
            output=cfg.output,
            batch_size=cfg.internal_batch_size,
        )
        return reduce_channels(attr, cfg.channel_reduction), {"delta": float(delta.abs().max())}


@hookimpl
def removalx_register_explainers(registry):  # type: ignore[no-untyped-def]
    registry.add("integrated_gradients", IGConfig, IntegratedGradients)
