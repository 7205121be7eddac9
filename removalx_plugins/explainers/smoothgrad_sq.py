"""``smoothgrad_sq``: SmoothGrad-Squared (STEP journal, Sec. V-B, Eq. 26).

``SG2(X) = (1/n) sum_i (dPhi_c(X'_i)/dX'_i)^2`` with ``X'_i = X + N(0, sigma^2)``, n = 50
(journal). The journal gives no sigma; we use the STEP authors' code's noise level (within
Smilkov et al.'s recommended 10-20 %), 15 % of the clip's value range
(``sigma = 0.15 (max X - min X)``). Noise is drawn from the recipe's generator (one seed per
sample), so a seed fixes the result whatever ``internal_batch_size``. Captum's
``NoiseTunnel`` is not used because it draws noise from the global RNG.
"""

from __future__ import annotations

from removalx.plugin import hookimpl
from removalx_plugins.explainers.smoothgrad import SmoothGrad, SmoothGradConfig


class SmoothGradSquaredConfig(SmoothGradConfig):
    """SmoothGrad-Squared settings (Eq. 26; the same fields as SmoothGrad's Eq. 25)."""


class SmoothGradSquared(SmoothGrad):
    """SmoothGrad-Squared (Eq. 26): the mean of the squared noisy gradients."""

    name = "smoothgrad_sq"
    squared = True


@hookimpl
def removalx_register_explainers(registry):  # type: ignore[no-untyped-def]
    registry.add("smoothgrad_sq", SmoothGradSquaredConfig, SmoothGradSquared)
