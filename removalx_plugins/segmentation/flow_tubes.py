"""``flow_tubes``: rectangular occluders carried along the optical flow (AOSA's masks).

Uchiyama et al., "Visually explaining 3D-CNN predictions for video classification with an
adaptive occlusion sensitivity analysis" (AOSA), Sec. 3.1: ``N`` anchor points are placed
every ``s`` pixels in the first frame, each is moved frame to frame by the dense optical
flow, and an ``h x w`` rectangle centred on the anchor in every frame forms one
spatio-temporal occlusion mask (a *tube*). Sec. 3.3: when an anchor leaves the frame its
tracking stops and the tube occludes nothing in the remaining frames.

Anchors are points of R^2 (Sec. 3.1); the flow at a non-integer point is interpolated
bilinearly (``tracking: subpixel``). ``tracking: integer`` reproduces the authors' released
code, which keeps anchors on whole pixels: the flow is read at the anchor's pixel and the
moved anchor is rounded to the nearest pixel every frame (an object moving 1.6 px/frame is
then tracked at 2 px/frame).

The flow (OpenCV Farnebaeck [7]) is computed once per clip and kept on the space
(``space.flow``), with the tube trajectories (``space.trajectories``, ``space.alive``) that
AOSA's co-occurrence (Sec. 3.2, plugin ``cooccurrence``) needs. Tubes overlap: ``render``
builds masks from per-tube, per-frame row and column indicators (two batched matrix
products, no loop over samples or pixels); ``expand`` is the mask-weighted mean of the
tube values (a display of per-tube values, not the AOSA map of ``aosa_map``).
"""

from __future__ import annotations

from typing import Annotated, Literal

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from removalx.plugin import ConfigError, FeatureSpace, PluginConfig, Segmenter, hookimpl

__all__ = ["FlowTubeSpace", "FlowTubes", "FlowTubesConfig", "farneback_flow", "track_anchors"]


#: A side or count along one axis, bounded at validation.
_Side = Annotated[int, Field(ge=1, le=4096, strict=True)]


class FlowTubesConfig(PluginConfig):
    """Anchor grid, occluder size and optical-flow parameters.

    The paper (Sec. 4.1) uses ``s = 8`` on 112 x 112 frames (``N = 196`` anchors) and
    16 x 16 occluders. It does not list Farnebaeck parameters; the defaults are those of
    the authors' released code (pyramid 0.5 x 3 levels, window 15, 3 iterations,
    ``poly_n`` 5, ``poly_sigma`` 1.2).
    """

    stride: int = Field(
        8,
        ge=1,
        description="anchor spacing s in pixels (Sec. 3.1 step 1; Sec. 4.1: s = 8); at most 4096",
        le=4096,
        strict=True,
    )
    mask_size: tuple[_Side, _Side] = Field(
        (16, 16),
        description="each in [1, 4096]; occluder height h and width w in pixels (Sec. 3.1 step 2; Sec. 4.1: 16 x 16)",
    )
    frame_out: Literal["stop", "clamp"] = Field(
        "stop",
        description="an anchor leaving the frame stops its tube (Sec. 3.3, 'stop'); 'clamp' keeps it at the border",
    )
    tracking: Literal["subpixel", "integer"] = Field(
        "subpixel",
        description="'subpixel': anchors in R^2 (Sec. 3.1), flow interpolated bilinearly; 'integer': anchors "
        "rounded to whole pixels every frame, flow read at the anchor's pixel (the authors' code)",
    )
    pyr_scale: float = Field(
        0.5,
        gt=0,
        lt=1,
        description="Farnebaeck pyramid scale [7] (the authors' code and OpenCV's reference values)",
    )
    levels: int = Field(3, ge=1, description="Farnebaeck pyramid levels [7]; at most 16", le=16, strict=True)
    winsize: int = Field(
        15, ge=3, description="Farnebaeck averaging window [7]; at most 255", le=255, strict=True
    )
    iterations: int = Field(
        3, ge=1, description="Farnebaeck iterations per level [7]; at most 100", le=100, strict=True
    )
    poly_n: int = Field(
        5, ge=3, description="Farnebaeck polynomial neighbourhood [7]; at most 15", le=15, strict=True
    )
    poly_sigma: float = Field(
        1.2, gt=0, description="Farnebaeck Gaussian std of the polynomial fit [7]; at most 10", le=10
    )


def farneback_flow(video: Tensor, config: FlowTubesConfig) -> Tensor:
    """Dense optical flow between consecutive frames, ``float32[T-1, H, W, 2]`` as ``(dx, dy)``.

    Parameters
    ----------
    video : Tensor
        ``float[T, H, W, C]`` in [0, 1]; converted to 8-bit grey (RGB weights for C = 3,
        channel mean otherwise) as OpenCV's Farnebaeck expects.
    config : FlowTubesConfig
        Farnebaeck parameters.
    """
    v = video.detach().float().cpu().numpy()
    grey = v @ np.array([0.299, 0.587, 0.114], dtype=np.float32) if v.shape[-1] == 3 else v.mean(-1)
    grey = np.clip(np.rint(grey * 255.0), 0, 255).astype(np.uint8)
    t, h, w = grey.shape
    flow = np.zeros((max(t - 1, 0), h, w, 2), dtype=np.float32)
    for i in range(t - 1):  # one OpenCV call per frame pair
        flow[i] = cv2.calcOpticalFlowFarneback(  # type: ignore[call-overload]  # flow=None: OpenCV allocates
            grey[i],
            grey[i + 1],
            None,
            config.pyr_scale,
            config.levels,
            config.winsize,
            config.iterations,
            config.poly_n,
            config.poly_sigma,
            0,
        )
    return torch.from_numpy(flow)


def track_anchors(
    anchors: Tensor, flow: Tensor, frame_out: str = "stop", tracking: str = "subpixel"
) -> tuple[Tensor, Tensor]:
    """Move anchor points along the flow (AOSA Sec. 3.1 steps 3-4, Sec. 3.3).

    Parameters
    ----------
    anchors : Tensor
        ``float[F, 2]`` ``(x, y)`` positions in the first frame.
    flow : Tensor
        ``float[T-1, H, W, 2]`` flow from frame ``t`` to ``t + 1``.
    frame_out : {"stop", "clamp"}
        ``stop``: an anchor that leaves the frame is dead from then on (its position is
        frozen at the last valid one); ``clamp``: it is clamped to the border.
    tracking : {"subpixel", "integer"}
        ``subpixel``: ``p + flow(p)`` with the flow interpolated bilinearly; ``integer``:
        anchors stay on whole pixels, ``round(p + flow[p])`` (clamped to the frame), the
        frame-out test made on the unrounded ``p + flow[p]``.

    Returns
    -------
    trajectories : Tensor
        ``float[F, T, 2]`` positions per frame.
    alive : Tensor
        ``bool[F, T]``, False from the frame an anchor left the image.
    """
    n_pairs, h, w, _ = flow.shape
    p = anchors.float().clone()
    traj = [p]
    alive = [torch.ones(p.shape[0], dtype=torch.bool)]
    scale = torch.tensor([2.0 / max(w - 1, 1), 2.0 / max(h - 1, 1)])
    if tracking == "integer":
        p = p.round()
    for t in range(n_pairs):  # loop over frames only; all anchors move at once
        if tracking == "integer":
            ix = p[:, 0].long().clamp(0, w - 1)
            iy = p[:, 1].long().clamp(0, h - 1)
            q = p + flow[t][iy, ix].float()
        else:
            grid = (p * scale - 1.0).view(1, -1, 1, 2)
            f = F.grid_sample(flow[t].permute(2, 0, 1)[None], grid, mode="bilinear", align_corners=True)
            q = p + f[0, :, :, 0].T
        inside = (q[:, 0] >= 0) & (q[:, 0] <= w - 1) & (q[:, 1] >= 0) & (q[:, 1] <= h - 1)
        if tracking == "integer":
            q = torch.stack([q[:, 0].round().clamp(0, w - 1), q[:, 1].round().clamp(0, h - 1)], dim=1)
        if frame_out == "stop":
            ok = alive[-1] & inside
            p = torch.where(ok[:, None], q, p)
        else:
            ok = alive[-1]
            p = torch.stack([q[:, 0].clamp(0, w - 1), q[:, 1].clamp(0, h - 1)], dim=1)
        traj.append(p)
        alive.append(ok)
    return torch.stack(traj, dim=1), torch.stack(alive, dim=1)


class FlowTubeSpace(FeatureSpace):
    """``F`` overlapping tubes: tube ``i`` is an ``h x w`` box around anchor ``i`` in each frame.

    Attributes
    ----------
    flow : Tensor
        ``float32[T-1, H, W, 2]`` the optical flow the tubes follow (CPU).
    trajectories : Tensor
        ``float32[F, T, 2]`` anchor ``(x, y)`` per frame.
    alive : Tensor
        ``bool[F, T]`` whether the tube occludes anything in frame ``t`` (Sec. 3.3).
    anchors : Tensor
        ``float32[F, 2]`` first-frame anchors.
    rows, cols : Tensor
        ``float[F, T, H]`` / ``float[F, T, W]`` indicators of each tube's box per frame
        (rows are zero where the tube is dead); the tube mask is their outer product.
    """

    def __init__(
        self,
        shape: tuple[int, int, int],
        flow: Tensor,
        trajectories: Tensor,
        alive: Tensor,
        mask_size: tuple[int, int],
        meta: dict | None = None,
    ) -> None:
        self.shape = shape
        self.flow = flow
        self.trajectories = trajectories
        self.alive = alive
        self.anchors = trajectories[:, 0]
        self.mask_size = (int(mask_size[0]), int(mask_size[1]))
        self.n_features = int(trajectories.shape[0])
        self.labels = None
        _, h, w = shape
        mh, mw = self.mask_size
        centre = trajectories.round().long()  # [F, T, 2]
        y0 = centre[..., 1] - mh // 2
        x0 = centre[..., 0] - mw // 2
        yy = torch.arange(h)
        xx = torch.arange(w)
        rows = (yy >= y0[..., None]) & (yy < (y0 + mh)[..., None]) & alive[..., None]
        cols = (xx >= x0[..., None]) & (xx < (x0 + mw)[..., None])
        self.rows = rows.float()
        self.cols = cols.float()
        self.meta = dict(meta or {})
        self.meta.update(mask_size=self.mask_size, n_alive_last=int(alive[:, -1].sum()))

    # -- masks -----------------------------------------------------------------------------
    def _spread(self, v: Tensor) -> Tensor:
        """``[B, F] -> [B, T, H, W]``: sum over tubes of ``v[b, i] * mask_i``."""
        t, h, w = self.shape
        b, f = v.shape
        rows = self.rows.to(v.device, v.dtype)
        cols = self.cols.to(v.device, v.dtype)
        a = torch.einsum("bf,fth->tbhf", v, rows).reshape(t, b * h, f)
        out = torch.bmm(a, cols.permute(1, 0, 2))  # [T, B*H, W]
        return out.view(t, b, h, w).permute(1, 0, 2, 3)

    def render(self, z: Tensor, index: Tensor | None = None) -> Tensor:
        """Keep-masks: a pixel is removed when any removed tube covers it (Sec. 3.2 product)."""
        removed = self._spread(1.0 - z.float())
        return (1.0 - removed).clamp_(min=0.0)

    def expand(self, values: Tensor) -> Tensor:
        """Mask-weighted mean of tube values per pixel; 0 where no tube reaches."""
        v = values.to(self.rows.device, torch.float32).view(1, -1)
        num = self._spread(v)[0]
        den = self._spread(torch.ones_like(v))[0]
        return torch.where(den > 0, num / den.clamp_min(1e-12), torch.zeros_like(num))

    def coverage(self) -> Tensor:
        """``float[T, H, W]`` number of tubes covering each pixel."""
        return self._spread(torch.ones(1, self.n_features, device=self.rows.device))[0]

    def to(self, device: torch.device | str) -> FlowTubeSpace:
        out = FlowTubeSpace.__new__(FlowTubeSpace)
        out.__dict__.update(self.__dict__)
        out.rows = self.rows.to(device)
        out.cols = self.cols.to(device)
        return out


class FlowTubes(Segmenter):
    """AOSA's spatio-temporal occlusion masks (Sec. 3.1, 3.3)."""

    #: Tubes overlap and leave pixels no tube reaches.
    space_provides = frozenset({"hard_masks", "nonempty"})

    def __init__(self, config: FlowTubesConfig) -> None:
        self.config = config

    def segment(self, video: Tensor, generator: torch.Generator) -> FlowTubeSpace:
        t, h, w = (int(s) for s in video.shape[:3])
        s = self.config.stride
        mh, mw = self.config.mask_size
        if s > min(h, w) or not (1 <= mh <= h and 1 <= mw <= w):
            raise ConfigError(
                f"flow_tubes: stride {s} / mask_size {(mh, mw)} do not fit frames of {h} x {w}.",
                f"Use stride <= {min(h, w)} and 1 <= mask_size <= ({h}, {w}) (paper: 8 and 16 x 16 at 112 x 112).",
            )
        ys = torch.arange(s // 2, h, s, dtype=torch.float32)
        xs = torch.arange(s // 2, w, s, dtype=torch.float32)
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        anchors = torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)
        flow = farneback_flow(video, self.config)
        traj, alive = track_anchors(anchors, flow, self.config.frame_out, self.config.tracking)
        meta = {
            "stride": s,
            "grid": (len(ys), len(xs)),
            "flow": "farneback",
            "tracking": self.config.tracking,
        }
        return FlowTubeSpace((t, h, w), flow, traj, alive, (mh, mw), meta)


@hookimpl
def removalx_register_segmenters(registry):  # type: ignore[no-untyped-def]
    registry.add("flow_tubes", FlowTubesConfig, FlowTubes)
