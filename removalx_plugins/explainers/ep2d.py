"""``ep2d``: 2D extremal perturbation on every frame, synchronous or unsynchronous.

The ECCV-W video attribution study (Sec. 4.2) compares its spatio-temporal perturbation with
"a vanilla extremal perturbation approach in which each frame is assigned the same area
constraint", in two variants:

* **sync** ("Extm. Ptb. Sync."): the masks of all frames are optimised together, one
  perturbed clip per area, with ``L_S^v`` imposed on every frame (the STEP authors' ``2d_ep``
  method; the same energy as EP-3D-Evenly, WACV Eq. 10-11);
* **unsync** ("Extm. Ptb. Unsync."): each frame's mask is optimised alone; "when searching
  for m_t, all the other masks are set to zeros", i.e. every other frame is fully blurred.

Both share :mod:`removalx_plugins.machinery.extremal` (blur pyramid of Eq. 2, Fong et al.'s smooth-max seeds,
SGD) and its defaults, except the ratios: the study reports the summed masks of the volume
constraints 0.01, 0.05 and 0.1 (Sec. 4.1, implementation details).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import torch
from pydantic import Field
from torch import Tensor

from removalx.plugin import Attribution, Explainer, hookimpl
from removalx_plugins.machinery.extremal import ExtremalConfig, extremal_perturbation

if TYPE_CHECKING:
    from removalx.plugin import VideoClassifier


class EP2DConfig(ExtremalConfig):
    """Per-frame extremal perturbation (ECCV-W Sec. 4.2): the area constraint is per frame."""

    areas: tuple[float, ...] = Field(
        (0.01, 0.05, 0.1),
        description="preservation ratio v of every frame (ECCV-W Sec. 4.1: 0.01, 0.05, 0.1)",
    )
    area_scope: Literal["frame"] = Field(
        "frame", description="always per frame: each frame is assigned the same area constraint"
    )
    sync: bool = Field(
        True,
        description="true: all frames' masks optimised together (Extm. Ptb. Sync.); false: each frame's "
        "mask alone, every other frame's mask 0 (Unsync.)",
    )


class EP2D(Explainer):
    """Frame-wise extremal perturbation, synchronous or unsynchronous."""

    def __init__(self, config: EP2DConfig) -> None:
        self.config = config

    def explain(
        self, model: VideoClassifier, video: Tensor, target: int, generator: torch.Generator
    ) -> Attribution:
        cfg = self.config
        name = "ep2d_sync" if cfg.sync else "ep2d_unsync"
        return extremal_perturbation(model, video, target, cfg, generator, unsync=not cfg.sync, method=name)


@hookimpl
def removalx_register_explainers(registry):  # type: ignore[no-untyped-def]
    registry.add("ep2d", EP2DConfig, EP2D)
