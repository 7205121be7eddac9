"""Overlays: colour bars, one colour map per kind of map, shared scales, original resolution,
H.264 MP4, and the notebook forms of an Attribution (numpy, repr, _repr_html_)."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pytest
import torch
from PIL import Image

import removalx
from removalx.core.types import Attribution
from removalx.display.colorbar import BAR_HEIGHT, MIN_WIDTH, strip_height
from removalx.display.output import MIN_PANEL
from removalx.display.visualize import legend_of, overlay_frames, render, shared_scale, upsample
from removalx.video.io import write_gif
from removalx_plugins.machinery.colors import apply_colormap, colormap_table

GREY = torch.full((2, 8, 8, 3), 0.5)


def _attr(values: torch.Tensor, **meta: object) -> Attribution:
    return Attribution(values=values.float(), target=1, meta={"recipe": {"name": "demo"}, **meta})


def _ramp(lo: float, hi: float) -> torch.Tensor:
    return torch.linspace(lo, hi, 2 * 8 * 8).reshape(2, 8, 8)


def _vis(**cfg: object):  # type: ignore[no-untyped-def]
    base = {"top_fraction": None, "stretch_quantiles": (0.0, 1.0), "alpha": 1.0}
    return {"name": "heatmap", **base, **cfg}


def test_unsigned_maps_are_sequential_signed_maps_diverging_centred_at_zero() -> None:
    a = _attr(_ramp(-1.0, 3.0))
    from removalx.core.registry import get_registry

    # unsigned: negatives dropped -> inferno from 0 (dark) to 3 (bright)
    vis = get_registry().make("visualization", "heatmap", {k: v for k, v in _vis().items() if k != "name"})
    leg = vis.legend(a)
    assert not leg.signed and (leg.low, leg.high) == (0.0, pytest.approx(3.0))
    torch.testing.assert_close(leg.colors[0], colormap_table("inferno")[0])
    torch.testing.assert_close(leg.colors[-1], colormap_table("inferno")[-1])
    # signed: a symmetric scale [-3, 3]; 0 gets coolwarm's middle colour, in the bar and the frames
    cfg = {k: v for k, v in _vis(negatives="show").items() if k != "name"}
    vis = get_registry().make("visualization", "heatmap", cfg)
    leg = vis.legend(a)
    assert leg.signed and (leg.low, leg.high) == (pytest.approx(-3.0), pytest.approx(3.0))
    mid = colormap_table("coolwarm")[128]  # matplotlib's coolwarm(0.5)
    torch.testing.assert_close(leg.colors[len(leg.colors) // 2], mid, atol=0.02, rtol=0)
    zero = _attr(torch.zeros(2, 8, 8).index_put_((torch.tensor([0]),) * 3, torch.tensor([3.0])))
    zero.values[1, 7, 7] = -3.0
    frames = vis.frames(GREY, zero)
    expected = (mid * 255).round().to(torch.uint8)
    assert torch.equal(frames[1, 0, 0], expected)  # a 0 pixel: the diverging map's centre


def test_colour_bar_under_every_frame_and_values_at_its_ends() -> None:
    a = _attr(_ramp(0.0, 2.0))
    frames = render(GREY, a, _vis(), colorbar=True)
    assert frames.shape == (2, 8 + BAR_HEIGHT, MIN_WIDTH, 3)
    assert torch.equal(frames[0, 8:], frames[1, 8:])  # the same bar on every frame
    bar_row = frames[0, 8 + 20, 6 : MIN_WIDTH - 6].float()  # through the colour gradient
    # left end: inferno(0), right end: inferno(1) (the bar is drawn with full colour)
    lo = (apply_colormap(torch.tensor(0.0), "inferno") * 255).round()
    hi = (apply_colormap(torch.tensor(1.0), "inferno") * 255).round()
    assert (bar_row[0] - lo).abs().max() <= 2 and (bar_row[-1] - hi).abs().max() <= 2


def test_shared_scale_gives_equal_values_equal_colours() -> None:
    small, large = _attr(_ramp(0.0, 1.0)), _attr(_ramp(0.0, 2.0))
    vis = _vis(stretch=True)
    scale = shared_scale([small, large], vis)
    assert scale == (pytest.approx(0.0), pytest.approx(2.0))
    f_small = render(GREY, small, vis, scale=scale)
    f_large = render(GREY, large, vis, scale=scale)
    # the same value (1.0) is the last pixel of `small` and the middle of `large`'s ramp
    v = 1.0
    expected = (apply_colormap(torch.tensor(v / 2.0), "inferno") * 255).round().to(torch.uint8)
    assert torch.equal(f_small[1, 7, 7], expected)
    own = render(GREY, small, vis)  # without the shared scale, 1.0 is the top of its own scale
    assert torch.equal(own[1, 7, 7], (apply_colormap(torch.tensor(1.0), "inferno") * 255).round().byte())
    idx = int((_ramp(0.0, 2.0) - v).abs().argmin())
    t, r = divmod(idx, 64)
    got = f_large[t, r // 8, r % 8].float()
    assert (got - expected.float()).abs().max() <= 3  # the nearest ramp value to 1.0


def test_fixed_scale_needs_vmax_below_vmin_rejected() -> None:
    from removalx.errors import ConfigError

    with pytest.raises(ConfigError, match="vmin must be below vmax"):
        render(GREY, _attr(_ramp(0, 1)), _vis(vmin=2.0, vmax=1.0))


def test_map_is_upsampled_to_the_original_resolution() -> None:
    a = _attr(_ramp(0.0, 1.0))
    big = torch.full((2, 24, 32, 3), 0.5)
    up = upsample(a, (24, 32))
    assert up.values.shape == (2, 24, 32) and up.space is None
    expected = torch.nn.functional.interpolate(a.values[:, None], size=(24, 32), mode="bilinear")[:, 0]
    torch.testing.assert_close(up.values, expected)
    frames = overlay_frames(big, a, _vis())
    assert frames.shape == (2, 24 + BAR_HEIGHT, max(2 * 32 + 2, MIN_WIDTH), 3)


def test_posneg_bar_is_red_to_green_and_centred_at_zero() -> None:
    from removalx.core.registry import get_registry

    vis = get_registry().make(
        "visualization", "posneg", {"negatives": "show", "top_fraction": None, "stretch": False}
    )
    leg = vis.legend(_attr(_ramp(-1.0, 2.0)))
    assert leg.signed and (leg.low, leg.high) == (pytest.approx(-2.0), pytest.approx(2.0))
    assert leg.colors[0].tolist() == [1.0, 0.0, 0.0] and leg.colors[-1].tolist() == [0.0, 1.0, 0.0]
    assert float(leg.alpha[len(leg.alpha) // 2]) < 0.01  # 0 is transparent


def test_attribution_numpy_repr_and_html() -> None:
    ex = removalx.Explainer.from_recipe(
        {
            "name": "tiny",
            "segmentation": {"name": "grid3d", "cells": [2, 2, 2]},
            "feature_selection": {"name": "leave_one_out"},
            "sample_selection": {"name": "exhaustive"},
            "summary": {"name": "difference"},
        },
        progress=False,
    )
    from removalx.testing.data import ToyClassifier, tiny_video

    video = tiny_video(frames=4, size=16)
    attr = ex.explain_clip(ToyClassifier(), video, 1)
    arr = attr.numpy()
    assert isinstance(arr, np.ndarray) and arr.dtype == np.float32 and arr.shape == (4, 16, 16)
    np.testing.assert_array_equal(arr, attr.values.numpy())
    arr[...] = 7  # a copy
    assert float(attr.values.max()) != 7
    text = repr(attr)
    assert len(text) <= 200, text
    lo, hi = float(attr.values.min()), float(attr.values.max())
    assert text.startswith("Attribution(tiny, target=1") and "float32[4x16x16]" in text
    assert f"{lo:.3g}" in text and f"{hi:.3g}" in text and "features=8" in text
    html = attr._repr_html_()
    m = re.search(r'src="data:image/gif;base64,([A-Za-z0-9+/=]+)"', html)
    assert m is not None
    gif = Image.open(io.BytesIO(base64.b64decode(m.group(1))))
    # clip | overlay, each enlarged to MIN_PANEL pixels high (16 px x 10), the colour bar below
    side = MIN_PANEL
    bar = strip_height(legend_of(attr), 2 * side + 2)
    assert gif.n_frames == 4 and gif.size == (2 * side + 2, side + bar)
    assert "tiny" in html and "<img" in html
    # without the clip (e.g. loaded from a file) the map is drawn over grey, still with its bar
    attr.video = None
    assert "data:image/gif;base64," in attr._repr_html_()


def test_mp4_is_h264_and_gif_still_written(tmp_path) -> None:
    av = pytest.importorskip("av")
    from removalx.display.visualize import save_overlays

    frames = overlay_frames(torch.rand(3, 15, 17, 3), _attr(torch.rand(3, 15, 17)), _vis())
    paths = save_overlays(frames, tmp_path, ["gif", "mp4", "png"], fps=5)
    names = sorted(p.name for p in paths)
    assert "overlay.gif" in names and "overlay.mp4" in names
    with av.open(str(tmp_path / "overlay.mp4")) as c:
        stream = c.streams.video[0]
        assert stream.codec_context.name == "h264"
        decoded = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(decoded) == 3
    _, h, w, _ = frames.shape
    assert decoded[0].shape == (h + h % 2, w + w % 2, 3)
    # lossy but close: H.264 at crf 18 keeps the picture (mean error of a few grey levels)
    err = np.abs(decoded[1][:h, :w].astype(float) - frames[1].numpy().astype(float)).mean()
    assert err < 6, err


def test_mp4_without_av_names_the_extra(monkeypatch, tmp_path) -> None:
    import sys

    from removalx.errors import MissingExtraError
    from removalx.video.io import write_mp4

    monkeypatch.setitem(sys.modules, "av", None)
    with pytest.raises(MissingExtraError, match=r"removalx\[mp4\]"):
        write_mp4(torch.zeros(2, 8, 8, 3, dtype=torch.uint8), tmp_path / "x.mp4")


def test_explain_cli_draws_at_the_original_resolution(tmp_path) -> None:
    pytest.importorskip("av")
    from removalx.cli import main

    g = torch.Generator().manual_seed(0)
    src = write_gif((torch.rand(8, 48, 64, 3, generator=g) * 255).byte(), tmp_path / "clip.gif", fps=8)
    out = tmp_path / "out"
    argv = ["explain", str(src), "--recipe", "rise3d", "--set", "sample_selection.n_samples=4"]
    argv += ["--frames", "4", "--size", "16", "--format", "gif,mp4,png", "--out", str(out), "--quiet"]
    assert main(argv) == 0
    gif = Image.open(out / "overlay.gif")
    # the centre 48 x 48 square of the original frames (the region the 16 x 16 clip covers)
    bar = strip_height(legend_of(Attribution.load(out / "attribution.npz")), MIN_WIDTH)
    assert bar >= BAR_HEIGHT and gif.size == (MIN_WIDTH, 48 + bar)
    assert len(list((out / "overlay_frames").glob("*.png"))) == 4
    import av

    with av.open(str(out / "overlay.mp4")) as c:
        assert c.streams.video[0].codec_context.name == "h264"
    assert main([*argv[:-3], "--overlay-size", "clip", "--out", str(tmp_path / "o2"), "--quiet"]) == 0
    assert Image.open(tmp_path / "o2" / "overlay.gif").size == (MIN_WIDTH, 16 + bar)
