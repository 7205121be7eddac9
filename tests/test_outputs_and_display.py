"""What users see (issue 27, section 2, items 2, 8, 9, 11): colour maps from matplotlib's tables,
wrapped colour-bar labels, baselines off the report's shared scale, output sizes (MP4 by default,
a GIF budget, small clips enlarged), the progress-bar choice, and ``Attribution``'s
``base_value`` / ``prediction`` / ``target_name`` / ``plot()`` / ``save(format=...)``."""

from __future__ import annotations

import base64
import importlib.util
import io
import itertools
import json
import re
import sys

import numpy as np
import pytest
import torch
from PIL import Image, ImageFont

import removalx
import removalx.display.notebook  # registers the HTML view, Attribution.save and plot
from removalx.core.legend import N_COLOURS, Legend
from removalx.core.types import Attribution
from removalx.display.colorbar import (
    BAR_HEIGHT,
    FONT_SIZE,
    LINE_HEIGHT,
    _font,
    colorbar_strip,
    font_path,
    strip_height,
    wrap_text,
)
from removalx.display.output import (
    MIN_PANEL,
    default_formats,
    downscale,
    enlarge,
    enlarge_factor,
    write_gif_within,
)
from removalx.display.visualize import comparable_scales, overlay_frames
from removalx.errors import ConfigError, MissingExtraError
from removalx.testing import ToyClassifier, tiny_video
from removalx_plugins.machinery.colormap_tables import MPL_NAMES
from removalx_plugins.machinery.colors import COLORMAPS, apply_colormap, colormap_table

VIS = {"name": "heatmap", "top_fraction": None, "stretch": False, "alpha": 1.0}


def _attr(values: torch.Tensor, name: str = "demo", **meta: object) -> Attribution:
    return Attribution(values=values.float(), target=1, meta={"recipe": {"name": name}, **meta})


def _legend(label: str, note: str = "") -> Legend:
    colours = apply_colormap(torch.linspace(0, 1, N_COLOURS), "inferno")
    return Legend(colours, torch.ones(N_COLOURS), 0.0, 2.28, label=label, signed=False, note=note)


# -- §2.11 colour maps: matplotlib's tables ------------------------------------------------------
@pytest.mark.parametrize("name", COLORMAPS)
def test_colour_maps_are_matplotlibs_tables(name: str) -> None:
    matplotlib = pytest.importorskip("matplotlib")
    cmap = matplotlib.colormaps[MPL_NAMES[name]]
    expected = cmap(np.arange(256))[:, :3]
    np.testing.assert_allclose(colormap_table(name).numpy(), expected, atol=0.5 / 255 + 1e-6, rtol=0)
    # a value is looked up as matplotlib does (bin floor(256 x), 1.0 in the last bin)
    x = np.concatenate([[0.0, 1.0, 0.5, 1 / 256, 255 / 256 - 1e-7], np.random.default_rng(0).random(200)])
    got = apply_colormap(torch.tensor(x, dtype=torch.float64), name).numpy()
    np.testing.assert_allclose(got, cmap(x.astype(np.float32))[:, :3], atol=0.5 / 255 + 1e-6, rtol=0)


def test_colour_maps_need_no_matplotlib_at_run_time(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert apply_colormap(torch.tensor([0.0, 1.0]), "viridis").shape == (2, 3)


# -- §2.2 colour-bar labels wrap, never cut; a real font ------------------------------------------
def test_colour_bar_text_uses_dejavu_sans_when_matplotlib_ships_it() -> None:
    path = font_path()
    if importlib.util.find_spec("matplotlib") is None:
        assert path is None
        return
    assert path is not None and path.endswith("DejaVuSans.ttf")
    font = _font(FONT_SIZE)
    assert isinstance(font, ImageFont.FreeTypeFont) and font.size == FONT_SIZE
    assert font.getname()[0] == "DejaVu Sans"


def test_long_labels_wrap_to_the_bar_width_and_nothing_is_cut() -> None:
    text = "attribution (rise3d): top 30 % shown, no negatives"
    font = _font(FONT_SIZE)
    for width in (80, 148, 228, 1000):
        lines = wrap_text(text, width)
        assert " ".join(lines) == text  # every word, in order: nothing cut, no ellipsis
        assert all(font.getlength(line) <= width for line in lines)
        assert not any(line.startswith("%") for line in lines)  # "30 %" stays together
        # greedy: no line could take the next line's first word
        for a, b in itertools.pairwise(lines):
            unit = b.replace(" %", "\u00a0%").split(" ")[0].replace("\u00a0", " ")  # "30 %" is one unit
            assert font.getlength(f"{a} {unit}") > width
    assert wrap_text(text, 1000) == [text]
    # a word wider than the line is split between characters, still complete
    assert "".join(wrap_text("x" * 60, 50)) == "x" * 60


def test_colour_bar_strip_grows_with_the_wrapped_label() -> None:
    short, long = _legend("attribution"), _legend("attribution (rise3d)", "top 30 % shown, no negatives")
    assert colorbar_strip(short, 160).shape == (BAR_HEIGHT, 160, 3) == (strip_height(short, 160), 160, 3)
    n = len(wrap_text("attribution (rise3d): top 30 % shown, no negatives", 160 - 12))
    assert n >= 2
    img = colorbar_strip(long, 160)
    assert img.shape[0] == strip_height(long, 160) == BAR_HEIGHT + (n - 1) * LINE_HEIGHT
    # the colour ramp sits below the text: its row holds the map's two ends
    bar_row = img[img.shape[0] - 44 + 20, 6:154].astype(int)
    lo, hi = (apply_colormap(torch.tensor([0.0, 1.0]), "inferno") * 255).round().int().numpy()
    assert np.abs(bar_row[0] - lo).max() <= 2 and np.abs(bar_row[-1] - hi).max() <= 2


# -- §2.2 baselines get their own scale ----------------------------------------------------------
def test_comparable_scales_leave_baselines_out_of_the_shared_scale() -> None:
    ramp = torch.linspace(0, 1, 2 * 8 * 8).reshape(2, 8, 8)
    method_a, method_b, baseline = _attr(0.33 + 0.03 * ramp), _attr(0.3 * ramp), _attr(2.28 * ramp)
    maps = [method_a, method_b, baseline]
    together = comparable_scales(maps, [VIS] * 3)
    assert together == [(pytest.approx(0.0), pytest.approx(2.28))] * 3  # the flat-tile bug
    apart = comparable_scales(maps, [VIS] * 3, own=[False, False, True])
    assert apart[0] == apart[1] == (pytest.approx(0.0), pytest.approx(0.36))  # min / max of a and b
    assert apart[2] == (pytest.approx(0.0), pytest.approx(2.28))


def _gallery_db(path):  # type: ignore[no-untyped-def]
    """One grey 4x16x16 clip: methods ``a`` (column / 15) and ``b`` (a / 2), baseline ``random`` (6 a)."""
    from removalx.experiments.store import Store

    ramp = (torch.arange(16.0) / 15).expand(4, 16, 16).contiguous()
    store = Store(path)
    store.put_video("toy", "v0", torch.full((4, 16, 16, 3), 0.5), 0, {})
    for method, values in (("random", 6 * ramp), ("a", ramp), ("b", ramp / 2)):
        recipe = {"name": method, "visualization": VIS}
        store.put_explanation(
            dataset="toy", item="v0", method=method, recipe_hash=method, model="m", seed=0,
            recipe=recipe, attribution=Attribution(values=values, target=0, meta={"recipe": recipe}), run_id=0,
        )  # fmt: skip
    store.close()
    return path


def test_report_gallery_draws_the_random_baseline_on_its_own_scale_after_the_methods(tmp_path) -> None:
    from removalx.experiments.report import GAP, _overlay_strip
    from removalx.experiments.store import Store

    store = Store(_gallery_db(tmp_path / "g.db"), read_only=True)
    try:
        strip = _overlay_strip(store, "toy", "v0", ["random", "a", "b"], 2)
    finally:
        store.close()
    assert strip.labels == ["clip", "a", "b", "random (baseline, own scale)"]
    assert strip.shared_bar  # a and b still share one bar
    tile = 16 * 8
    assert strip.widths[:3] == [tile] * 3 and strip.widths[3] >= tile
    img = np.asarray(Image.open(io.BytesIO(base64.b64decode(strip.uri.split(",", 1)[1]))).convert("RGB"))
    x_a, x_b, x_r = tile + GAP, 2 * (tile + GAP), 3 * (tile + GAP)

    def px(x0: int, column: int) -> np.ndarray:
        return img[4 * 8 + 4, x0 + column * 8 + 4].astype(int)

    top = (apply_colormap(torch.tensor(1.0), "inferno") * 255).round().int().numpy()
    # a's 1.0 and the baseline's 6.0 both reach the top of their own scales ...
    assert np.abs(px(x_a, 15) - top).max() <= 3 and np.abs(px(x_r, 15) - top).max() <= 3
    # ... and a and b share theirs: equal values (a = b = 7/15), equal colours
    assert np.array_equal(px(x_a, 7), px(x_b, 14))
    # on the old shared scale [0, 6], a's 1.0 would be inferno(1/6), far from the top colour
    sixth = (apply_colormap(torch.tensor(1 / 6), "inferno") * 255).round().int().numpy()
    assert np.abs(sixth - top).max() > 100


# -- §2.8 output sizes ----------------------------------------------------------------------------
def _hide(monkeypatch, module: str) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == module else real(name, *a)
    )


def test_default_format_is_mp4_with_pyav_and_gif_without(monkeypatch) -> None:
    assert default_formats() == (["mp4"] if importlib.util.find_spec("av") is not None else ["gif"])
    _hide(monkeypatch, "av")
    assert default_formats() == ["gif"]


@pytest.mark.parametrize("hide_av", [False, True])
def test_explain_writes_mp4_by_default_where_pyav_is_installed(tmp_path, monkeypatch, hide_av) -> None:
    from removalx.cli import main

    if not hide_av:
        pytest.importorskip("av")
    else:
        _hide(monkeypatch, "av")
    out = tmp_path / "out"
    argv = ["explain", "--recipe", "rise3d", "--set", "sample_selection.n_samples=4", "--out", str(out), "-q"]
    assert main(argv) == 0
    expected = "overlay.gif" if hide_av else "overlay.mp4"
    other = "overlay.mp4" if hide_av else "overlay.gif"
    assert (out / expected).stat().st_size > 0 and not (out / other).exists()
    assert expected in json.loads((out / "summary.json").read_text())["files"]


def test_gif_is_shrunk_under_its_budget_unless_no_budget(tmp_path) -> None:
    g = torch.Generator().manual_seed(0)
    frames = (torch.rand(6, 160, 200, 3, generator=g) * 255).to(torch.uint8)  # noise: GIF cannot compress
    full, scale = write_gif_within(frames, tmp_path / "full.gif", fps=4, budget=None)
    size = full.stat().st_size
    assert scale == 1.0 and Image.open(full).size == (200, 160)
    budget = size // 4
    small, scale = write_gif_within(frames, tmp_path / "small.gif", fps=4, budget=budget)
    assert small.stat().st_size <= budget and scale < 1.0
    gif = Image.open(small)
    assert gif.n_frames == 6 and gif.size == tuple(downscale(frames, scale).shape[2:0:-1])
    # under budget: written at full size
    same, scale = write_gif_within(frames, tmp_path / "same.gif", fps=4, budget=size + 1)
    assert scale == 1.0 and Image.open(same).size == (200, 160)


def test_downscale_is_area_averaging() -> None:
    frames = torch.arange(4 * 4 * 3, dtype=torch.uint8).reshape(1, 4, 4, 3) * 3
    small = downscale(frames, 0.5) if min(frames.shape[1:3]) * 0.5 >= 8 else None
    assert small is None  # never below 8 px: this one stays 8 x 8 minimum
    frames = torch.arange(16 * 16 * 3).reshape(1, 16, 16, 3).to(torch.uint8)
    small = downscale(frames, 0.5)
    expected = frames.float().reshape(1, 8, 2, 8, 2, 3).mean(dim=(2, 4)).round().to(torch.uint8)
    assert torch.equal(small, expected)


@pytest.mark.parametrize(("height", "factor"), [(16, 10), (112, 2), (159, 2), (160, 1), (576, 1)])
def test_small_clips_are_enlarged_like_the_study(height: int, factor: int) -> None:
    assert enlarge_factor(height) == factor and MIN_PANEL == 160
    from removalx.experiments.study.create import MIN_PANEL as STUDY_PANEL

    assert STUDY_PANEL == MIN_PANEL
    frames = torch.arange(2 * 3 * 2 * 3).reshape(2, 3, 2, 3)
    big = enlarge(frames, 3)
    expected = np.kron(frames.numpy(), np.ones((1, 3, 3, 1), dtype=np.int64))
    np.testing.assert_array_equal(big.numpy(), expected)
    assert enlarge(frames, 1) is frames


def test_notebook_view_of_a_112_pixel_clip_is_enlarged_and_its_bar_text_keeps_its_size() -> None:
    video = torch.full((2, 112, 112, 3), 0.5)
    attr = _attr(torch.linspace(0, 1, 2 * 112 * 112).reshape(2, 112, 112))
    attr.video = video
    m = re.search(r'src="data:image/gif;base64,([A-Za-z0-9+/=]+)"', attr._repr_html_())
    assert m is not None
    gif = Image.open(io.BytesIO(base64.b64decode(m.group(1))))
    frames = overlay_frames(video, attr, min_panel=MIN_PANEL)
    assert gif.size == (frames.shape[2], frames.shape[1]) == (2 * 224 + 2, frames.shape[1])
    plain = overlay_frames(video, attr)
    assert frames.shape[1] - 224 == plain.shape[1] - 112  # the same colour bar: text not enlarged


# -- §2.8 progress bars ---------------------------------------------------------------------------
def test_progress_bar_is_tqdm_auto_only_with_ipywidgets(monkeypatch) -> None:
    from tqdm.auto import tqdm as auto_bar
    from tqdm.std import tqdm as plain_bar

    from removalx.core.progress import bar_class

    _hide(monkeypatch, "ipywidgets")
    assert bar_class() is plain_bar
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: object() if name == "ipywidgets" else real(name, *a)
    )
    assert bar_class() is auto_bar


def test_no_module_of_removalx_imports_tqdm_auto_directly() -> None:
    from pathlib import Path

    root = Path(removalx.__file__).parent
    offenders = [
        str(p.relative_to(root))
        for p in root.rglob("*.py")
        if "from tqdm.auto import" in p.read_text() and p.name != "progress.py"
    ]
    assert offenders == []


# -- §2.9 Attribution: base value, prediction, class name, plot, save ----------------------------
def test_attribution_reference_values_read_meta_and_are_none_when_absent() -> None:
    bare = Attribution(values=torch.zeros(1, 2, 2), target=0)
    assert (bare.base_value, bare.prediction, bare.target_name) == (None, None, None)
    a = Attribution(
        values=torch.zeros(1, 2, 2),
        target=0,
        meta={"base": {"full": 0.9, "empty": 0.1}, "target_name": "cat"},
    )
    assert (a.base_value, a.prediction, a.target_name) == (0.1, 0.9, "cat")
    s = Attribution(
        values=torch.zeros(1, 2, 2), target=0, meta={"summary": {"base_value": 0.2, "full_value": 0.7}}
    )
    assert (s.base_value, s.prediction) == (0.2, 0.7)


def test_attribution_reference_values_of_a_shapley_run_match_the_model() -> None:
    video = tiny_video(frames=4, size=8, seed=1)
    model = removalx.VideoClassifier(ToyClassifier(n_classes=3, seed=2))
    recipe = {
        "name": "oracle",
        "segmentation": {"name": "grid3d", "cells": [2, 2, 1]},
        "feature_selection": {"name": "shapley_kernel"},
        "sample_selection": {"name": "exhaustive"},
        "removal": {"name": "constant", "value": 0.0},
        "behavior": {"name": "probability"},
        "summary": {"name": "shapley"},
    }
    attr = removalx.Explainer.from_recipe(recipe, seed=0, progress=False).explain(model, video, target=1)
    with torch.no_grad():  # independent: the model on the clip and on the all-removed (black) clip
        full = float(model(video[None]).softmax(-1)[0, 1])
        empty = float(model(torch.zeros_like(video)[None]).softmax(-1)[0, 1])
    assert attr.prediction == pytest.approx(full, abs=1e-6)
    assert attr.base_value == pytest.approx(empty, abs=1e-6)
    # Shapley efficiency, as shap's Explanation: base_values + values.sum() = the prediction
    assert attr.base_value + float(attr.feature_values.double().sum()) == pytest.approx(
        attr.prediction, abs=1e-5
    )
    assert attr.target_name is None  # the toy model has no class names


def _small_attr() -> Attribution:
    attr = _attr(torch.linspace(0, 1, 3 * 16 * 16).reshape(3, 16, 16), name="tiny")
    attr.video = torch.full((3, 16, 16, 3), 0.5)
    return attr


def test_save_npz_keeps_writing_the_attribution_file(tmp_path) -> None:
    attr = _small_attr()
    for path, fmt in ((tmp_path / "a.npz", None), (tmp_path / "b.npz", "npz")):
        assert attr.save(path, format=fmt) == path
        back = Attribution.load(path)
        assert torch.equal(back.values, attr.values) and back.meta["recipe"] == {"name": "tiny"}
    with pytest.raises(ConfigError, match="takes no options"):
        attr.save(tmp_path / "c.npz", fps=3)


def test_save_writes_the_overlay_by_suffix_or_format(tmp_path) -> None:
    attr = _small_attr()
    expected = overlay_frames(attr.video, attr, min_panel=MIN_PANEL)  # clip | overlay, enlarged, bar
    gif = attr.save(tmp_path / "x.gif")
    img = Image.open(gif)
    assert img.format == "GIF" and img.n_frames == 3 and img.size == (expected.shape[2], expected.shape[1])
    other = attr.save(tmp_path / "x.anything", format="GIF")
    assert Image.open(other).format == "GIF"
    png = Image.open(attr.save(tmp_path / "x.png", columns=2))
    # 3 frames in a grid of 2 columns (16 px enlarged to 160), gaps of 2 px, the colour bar below
    grid_w, grid_h = 2 * 160 + 2, 2 * 160 + 2
    assert png.format == "PNG" and png.size[0] == max(grid_w, 240) and png.size[1] > grid_h
    if importlib.util.find_spec("av") is not None:
        import av

        with av.open(str(attr.save(tmp_path / "x.mp4"))) as c:
            assert c.streams.video[0].codec_context.name == "h264"


def test_save_rejects_an_unknown_format_saying_what_it_takes(tmp_path) -> None:
    with pytest.raises(ConfigError) as info:
        _small_attr().save(tmp_path / "x.npz", format="bmp" * 50)
    text = str(info.value)
    assert "'npz'" in text and "'gif'" in text and "bmp" in text and len(text) < 400


def test_without_registered_views_save_and_plot_say_what_to_import(tmp_path, monkeypatch) -> None:
    from removalx.core import types

    monkeypatch.setattr(types, "_OVERLAY_VIEWS", None)
    with pytest.raises(ConfigError, match=r"removalx\.display\.views"):
        _small_attr().save(tmp_path / "x.gif")
    with pytest.raises(ConfigError, match=r"removalx\.display\.views"):
        _small_attr().plot()


def test_plot_draws_a_grid_of_frames_and_the_colour_bar() -> None:
    pytest.importorskip("matplotlib")
    attr = _attr(torch.linspace(0, 1, 10 * 8 * 8).reshape(10, 8, 8), name="tiny")
    fig = attr.plot(frames=6, columns=3, use_pyplot=False)
    images = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in images] == [f"frame {t}" for t in (0, 2, 4, 5, 7, 9)]
    bars = [ax for ax in fig.axes if not ax.images and ax.get_xlabel()]
    assert len(bars) == 1 and bars[0].get_xlabel().startswith("attribution (tiny)")
    # the frames shown are the overlays removalx draws
    from removalx.display.visualize import render

    grey = torch.full((10, 8, 8, 3), 0.5)
    np.testing.assert_array_equal(images[1].images[0].get_array(), render(grey, attr)[2].numpy())


def test_plot_without_matplotlib_names_the_report_extra(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(MissingExtraError, match=r"removalx\[report\]"):
        _small_attr().plot()
