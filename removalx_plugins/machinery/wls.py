"""Streaming weighted least squares: sufficient statistics instead of stored samples.

LIME's weighted ridge and Kernel SHAP's constrained regression only need
``sum w``, ``sum w x``, ``sum w y``, ``sum w x x^T``, ``sum w x y`` and ``sum w y^2``; keeping
those (``F x F`` numbers, float64) makes the summaries' memory independent of the number
of samples (docs/concepts.md).
"""

from __future__ import annotations

import torch
from torch import Tensor


class WeightedGram:
    """Accumulates the weighted second moments of ``(x, y)`` pairs."""

    def __init__(self, n_features: int, device: torch.device | str = "cpu") -> None:
        f = n_features

        def zeros(*shape: int) -> Tensor:
            return torch.zeros(shape, dtype=torch.float64, device=device)

        self.sw, self.sy, self.syy = zeros(), zeros(), zeros()
        self.sx, self.sxy = zeros(f), zeros(f)
        self.sxx = zeros(f, f)
        self.n = 0

    def add(self, x: Tensor, y: Tensor, w: Tensor) -> None:
        """Add rows ``x float[B, F]``, targets ``y float[B]``, weights ``w float[B]``.

        Rows on an accelerator move the float64 statistics there once, instead of being copied
        back to the host every batch (a host-device sync); rows on the CPU, or on MPS (which has
        no float64), are copied to the statistics' device.
        """
        if x.device.type not in ("cpu", "mps") and self.sx.device != x.device:
            self._move(x.device)
        x = x.to(self.sx.device, torch.float64)
        y = y.to(self.sx.device, torch.float64)
        w = w.to(self.sx.device, torch.float64)
        wx = x * w[:, None]
        self.sw += w.sum()
        self.sx += wx.sum(0)
        self.sy += (w * y).sum()
        self.sxx += wx.T @ x
        self.sxy += wx.T @ y
        self.syy += (w * y * y).sum()
        self.n += int(x.shape[0])

    def _move(self, device: torch.device | str) -> None:
        for name in ("sw", "sy", "syy", "sx", "sxy", "sxx"):
            setattr(self, name, getattr(self, name).to(device))

    def to(self, device: torch.device | str) -> WeightedGram:
        """A gram with the same statistics on ``device`` (``self`` if they already are there)."""
        if self.sx.device == torch.device(device):
            return self
        out = WeightedGram.__new__(WeightedGram)
        out.n = self.n
        for name in ("sw", "sy", "syy", "sx", "sxy", "sxx"):
            setattr(out, name, getattr(self, name).to(device))
        return out

    def add_scaled(self, other: WeightedGram, scale: float) -> None:
        """Add ``scale`` times the statistics of ``other`` (a bootstrap replicate's weight)."""
        for name in ("sw", "sy", "syy", "sx", "sxy", "sxx"):
            getattr(self, name).add_(getattr(other, name), alpha=scale)
        self.n += round(scale * other.n)

    def ridge(self, alpha: float, fit_intercept: bool = True) -> tuple[Tensor, Tensor, Tensor]:
        """Weighted ridge regression (intercept not penalised), as scikit-learn's ``Ridge``.

        Returns
        -------
        coef : Tensor
            ``float64[F]``.
        intercept : Tensor
            Scalar.
        r2 : Tensor
            Weighted coefficient of determination on the accumulated rows.
        """
        f = self.sx.shape[0]
        eye = torch.eye(f, dtype=torch.float64, device=self.sx.device)
        if fit_intercept:
            xm = self.sx / self.sw
            ym = self.sy / self.sw
            a = self.sxx - self.sw * torch.outer(xm, xm)
            b = self.sxy - self.sw * xm * ym
        else:
            xm = torch.zeros_like(self.sx)
            ym = torch.zeros_like(self.sy)
            a, b = self.sxx, self.sxy
        coef = solve_psd(a + alpha * eye, b)
        intercept = ym - xm @ coef
        sse = (
            self.syy
            - 2 * coef @ self.sxy
            - 2 * intercept * self.sy
            + coef @ self.sxx @ coef
            + 2 * intercept * (coef @ self.sx)
            + intercept**2 * self.sw
        )
        sst = self.syy - self.sy**2 / self.sw
        r2 = 1 - sse / sst if float(sst) > 0 else torch.ones((), dtype=torch.float64)
        return coef, intercept, r2


def solve_psd(a: Tensor, b: Tensor) -> Tensor:
    """Solve ``a x = b`` for symmetric PSD ``a``: Cholesky, else the pseudo-inverse (min norm)."""
    chol, info = torch.linalg.cholesky_ex(a)
    if int(info) == 0:
        return torch.cholesky_solve(b[:, None], chol)[:, 0]
    return torch.linalg.pinv(a, hermitian=True) @ b
