"""``ep3d``: 3D Extremal Perturbation (STEP WACV paper, Sec. 3; the journal's ``T_K = 0``).

Fong et al.'s extremal perturbation with one area constraint over the whole clip: for each
ratio ``v`` minimise ``lambda L_S^v(M) - Phi_c(M (x) X)`` (journal Eq. 5-6, blur perturbation
Eq. 2), i.e. STEP without the smoothness loss ``L_K`` (journal Table IV, ``T_K = 0``). The
STEP authors' code runs EP-3D as STEP with ``L_K`` switched off, so the two share
:mod:`removalx_plugins.machinery.extremal` and every default: areas 0.05-0.20, stride-7 seeds, smooth max with
sigma 11 px, SGD with learning rate 0.05 and momentum 0.9 for 1200 iterations,
``lambda = 300 x 1.0008668^i``, sigma = 10 px smoothing of the summed masks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from removalx.plugin import Attribution, Explainer, hookimpl
from removalx_plugins.machinery.extremal import ExtremalConfig, extremal_perturbation

if TYPE_CHECKING:
    from removalx.plugin import VideoClassifier


class EP3DConfig(ExtremalConfig):
    """EP-3D settings: :class:`removalx_plugins.machinery.extremal.ExtremalConfig` (Eq. 2, 5, 6)."""


class EP3D(Explainer):
    """Extremal perturbation over the whole spatio-temporal volume (Eq. 5)."""

    def __init__(self, config: EP3DConfig) -> None:
        self.config = config

    def explain(
        self, model: VideoClassifier, video: Tensor, target: int, generator: torch.Generator
    ) -> Attribution:
        return extremal_perturbation(model, video, target, self.config, generator, method="ep3d")


@hookimpl
def removalx_register_explainers(registry):  # type: ignore[no-untyped-def]
    registry.add("ep3d", EP3DConfig, EP3D)
