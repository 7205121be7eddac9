"""``step``: Spatio-Temporal Extremal Perturbation (STEP journal, Sec. III, Eq. 2-11).

For each preservation ratio ``v`` (default 0.05, 0.10, 0.15, 0.20; Sec. V-A.3) STEP finds a
mask sequence ``M`` minimising Eq. 11::

    lambda_1 L_S^v(M) + lambda_2 L_K^v(M) - Phi_c(M (x) X)

* ``M (x) X`` blurs removed pixels per frame (Eq. 2), via a blur pyramid;
* ``L_S^v`` pulls the sorted mask values towards ``v THW`` ones then zeros (Eq. 6);
* ``L_K^v(M) = L_S^{beta v}(M * K)`` does the same for the mask convolved (stride
  (1, 11, 11), no padding) with a normalised 3D ellipsoid ``K`` of ``T_K x 11 x 11``
  (``T_K = 8``; Eq. 7-10, Sec. V-D), ``beta`` of Eq. 8 accounting for the convolution;
* ``lambda_2`` is much smaller than ``lambda_1`` for the first iterations and comparable
  afterwards (Sec. III-B); the numbers are the authors' released ones: ``lambda_2 = 0`` up
  to iteration 100, then 300, while ``lambda_1 = 300 x 1.0008668^i``;
* masks are upsampled from per-frame seeds with stride 7 by Fong et al.'s smooth max.

All areas are optimised as one batch (SGD, learning rate 0.05, momentum 0.9, 1200
iterations: the authors' code; the journal names no optimiser); the final map is the sum of
the area masks blurred per frame with a Gaussian of sigma = 10 px (Sec. V-A.3). The machinery
is in :mod:`removalx_plugins.machinery.extremal` (shared with ``ep3d``). When the clip is smaller than the
kernel along an axis (e.g. 4 frames < ``T_K = 8``), the kernel is clipped to the clip along
that axis and ``beta`` is computed with the clipped size (recorded in ``meta["kernel_size"]``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import torch
from pydantic import Field
from torch import Tensor

from removalx.plugin import Attribution, Explainer, hookimpl
from removalx_plugins.machinery.extremal import ExtremalConfig, extremal_perturbation

if TYPE_CHECKING:
    from removalx.plugin import VideoClassifier


#: A side or count along one axis, bounded at validation.
_Side = Annotated[int, Field(ge=1, le=4096, strict=True)]


class STEPConfig(ExtremalConfig):
    """STEP = EP-3D settings plus the smoothness loss ``L_K`` (Eq. 7-11) and its weight."""

    kernel_size: tuple[_Side, _Side, _Side] = Field(
        (8, 11, 11),
        description="each in [1, 4096]; (T_K, H_K, W_K) of the ellipsoid K, Eq. 9 (journal: T_K = 8, Sec. V-D; 11 px)",
    )
    kernel_stride: tuple[_Side, _Side, _Side] = Field(
        (1, 11, 11),
        description="each in [1, 4096]; stride of the 3D convolution M * K in Eq. 7 (journal Sec. V-A.3), padding 0",
    )
    lambda2: float = Field(
        300.0,
        ge=0,
        description="lambda_2 of Eq. 11 once L_K is on: 'comparable' to lambda_1 (authors: 300); at most 1e9",
        le=1e9,
    )
    lambda2_start: int = Field(
        101,
        ge=0,
        description="first iteration (0-based) with lambda_2 > 0; before it lambda_2 = 0 "
        "(Sec. III-B 'much smaller'; authors: switched on after iteration 100); at most 1e6",
        le=1_000_000,
        strict=True,
    )
    lambda2_grows: bool = Field(
        False,
        description="multiply lambda_2 by lambda_growth^i like lambda_1 (authors: no, constant 300; "
        "step_torchray: yes, so that lambda_2 = lambda_1 after the warm-up)",
    )


class STEP(Explainer):
    """Spatio-Temporal Extremal Perturbation (Eq. 11)."""

    def __init__(self, config: STEPConfig) -> None:
        self.config = config

    def explain(
        self, model: VideoClassifier, video: Tensor, target: int, generator: torch.Generator
    ) -> Attribution:
        cfg = self.config
        return extremal_perturbation(
            model,
            video,
            target,
            cfg,
            generator,
            kernel_size=cfg.kernel_size,
            kernel_stride=cfg.kernel_stride,
            lambda2=cfg.lambda2,
            lambda2_start=cfg.lambda2_start,
            lambda2_grows=cfg.lambda2_grows,
            method="step",
        )


@hookimpl
def removalx_register_explainers(registry):  # type: ignore[no-untyped-def]
    registry.add("step", STEPConfig, STEP)
