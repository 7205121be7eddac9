"""``inpaint``: fill removed pixels by OpenCV inpainting, frame by frame.

"removal-based video explanations" (Sec. 3.4): inpainting keeps removed regions in the
data domain. Telea's fast marching method or Navier-Stokes (``cv2.inpaint``). It runs on
the CPU per sample and frame, so it is the slowest removal by far.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np
import torch
from pydantic import Field
from torch import Tensor

from removalx.plugin import PluginConfig, Removal, hookimpl


class InpaintConfig(PluginConfig):
    """OpenCV inpainting method and radius."""

    method: Literal["telea", "ns"] = "telea"
    radius: float = Field(3.0, gt=0, description="neighbourhood radius in pixels; at most 1000", le=1000)


class Inpaint(Removal):
    """``fill = cv2.inpaint(frame, removed-mask)`` for every sample and frame."""

    def __init__(self, config: InpaintConfig) -> None:
        self.flag = cv2.INPAINT_TELEA if config.method == "telea" else cv2.INPAINT_NS
        self.radius = config.radius

    def fill(self, video: Tensor, keep: Tensor, index: Tensor) -> Tensor:
        frames = (video.detach().clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
        holes = (keep.detach() < 0.5).cpu().numpy().astype(np.uint8)
        out = np.empty((keep.shape[0], *frames.shape), dtype=np.uint8)
        for b in range(keep.shape[0]):
            for t in range(frames.shape[0]):
                if holes[b, t].any():
                    out[b, t] = cv2.inpaint(frames[t], holes[b, t], self.radius, self.flag).reshape(
                        frames[t].shape
                    )
                else:
                    out[b, t] = frames[t]
        return torch.from_numpy(out).to(video.device, video.dtype) / 255.0


@hookimpl
def removalx_register_removals(registry):  # type: ignore[no-untyped-def]
    registry.add("inpaint", InpaintConfig, Inpaint)
