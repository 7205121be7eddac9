"""``smoothgrad``: SmoothGrad (STEP journal, Sec. V-B, Eq. 25).

``SG(X) = (1/n) sum_i dPhi_c(X'_i)/dX'_i`` with ``X'_i = X + N(0, sigma^2)``, n = 50
(journal). The journal gives no sigma; we use the STEP authors' code's noise level (within
Smilkov et al.'s recommended 10-20 %), 15 % of the clip's value range
(``sigma = 0.15 (max X - min X)``). Noise is drawn from the recipe's generator (one seed per
sample), so a seed fixes the result whatever ``internal_batch_size``. Captum's
``NoiseTunnel`` is not used because it draws noise from the global RNG.

``input_space="model"`` adds the noise to, and differentiates with respect to, the model's
normalised input ``(X - mean) / std`` (sigma from its value range), as the STEP authors'
code does; the ``smoothgrad`` / ``smoothgrad_sq`` recipes set it, with their ``|.|``-sum over
channels and [0, 1] normalisation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from pydantic import Field
from torch import Tensor

from removalx.plugin import hookimpl
from removalx_plugins.machinery.gradients import (
    INPUT_SPACE_HELP,
    InputMapConfig,
    InputMapExplainer,
    InputSpace,
    model_space,
    reduce_channels,
    smoothgrad,
)

if TYPE_CHECKING:
    from removalx.plugin import VideoClassifier


class SmoothGradConfig(InputMapConfig):
    """SmoothGrad settings (Eq. 25)."""

    n_samples: int = Field(
        50,
        gt=0,
        description="n, noisy samples in Eq. 25 (journal: 50); at most 10,000",
        le=10_000,
        strict=True,
    )
    noise_level: float = Field(
        0.15,
        ge=0,
        description="sigma of Eq. 25 as a fraction of (max X - min X) (Smilkov et al.: 0.10-0.20); at most 10",
        le=10,
    )
    input_space: InputSpace = Field("pixel", description=INPUT_SPACE_HELP)


class SmoothGrad(InputMapExplainer[SmoothGradConfig]):
    """SmoothGrad (Eq. 25)."""

    #: Registered name (used in messages and meta) and whether gradients are squared (Eq. 26).
    name = "smoothgrad"
    squared = False

    def attribute(
        self, model: VideoClassifier, video: Tensor, target: int, generator: torch.Generator
    ) -> tuple[Tensor, dict[str, Any]]:
        cfg = self.config
        attr, sigma = smoothgrad(
            model,
            video,
            target,
            n_samples=cfg.n_samples,
            noise_level=cfg.noise_level,
            squared=self.squared,
            output=cfg.output,
            batch_size=cfg.internal_batch_size,
            generator=generator,
            space=model_space(model, video) if cfg.input_space == "model" else None,
        )
        return reduce_channels(attr, cfg.channel_reduction), {"sigma": sigma, "input_space": cfg.input_space}


@hookimpl
def removalx_register_explainers(registry):  # type: ignore[no-untyped-def]
    registry.add("smoothgrad", SmoothGradConfig, SmoothGrad)
