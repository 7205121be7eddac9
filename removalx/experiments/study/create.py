"""``removalx study create``: a fixed set of items, each rendered once.

An item is one explanation in the experiment database (one video x method x model). Its media
are rendered once, when the study is created, with the visualization of the explanation's own
recipe (the display of "removal-based video explanations", Sec. 4.5: top 30 %, no negative
relevance, histogram stretching): the clip and its overlay side by side in one GIF (so their
playback is synchronised frame by frame), and the colour-map legend as a PNG: the colours of
the visualizer's colour bar (:mod:`removalx.display.colorbar`), without values. Nothing in the media names the method, the
model or the dataset.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from removalx.core.types import Attribution
from removalx.errors import truncate
from removalx.experiments.runner import RANDOM
from removalx.experiments.study import QUESTION, StudyError
from removalx.experiments.study.db import StudyDB

__all__ = ["MAX_SEED", "StudySpec", "check_spec", "create_study", "legend_png", "render_item"]

#: Each half of an item's GIF is upscaled (nearest neighbour) to at least this many pixels.
MIN_PANEL = 160  # removalx.display.output.MIN_PANEL: notebooks enlarge small clips alike

#: Rater ids: letters, digits and ``_ . @ -``, 1 to 64 characters.
RATER_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.@-")


def check_rater_id(rater: str) -> str:
    """``rater`` if it is a valid rater id, else :class:`StudyError`."""
    if not 1 <= len(rater) <= 64 or not set(rater) <= RATER_CHARS:
        raise StudyError(
            f"Invalid rater id {truncate(rater, 70)!r}: expected 1 to 64 letters, digits or _ . @ -.",
            "Use ids like alice, rater_2 or a.b@lab.",
        )
    return rater


@dataclass
class StudySpec:
    """What ``study create`` was asked for (see ``removalx study create --help``)."""

    name: str
    recipes: list[str] | None = None
    videos: int | None = None
    seed: int = 0
    raters: list[str] = field(default_factory=list)
    dataset: str | None = None
    models: list[str] | None = None
    frames: int = 16
    size: int = 112
    data_seed: int = 0
    overrides: list[str] = field(default_factory=list)
    model: str = "zoo:r3d_tiny"
    weights: str | None = None
    device: str | None = None
    recipe_seed: int | None = None
    batch_size: int | None = None
    fps: float = 6.0
    progress: bool = True


def _gif_bytes(frames: torch.Tensor, fps: float) -> bytes:
    from removalx.video.io import write_gif

    with tempfile.TemporaryDirectory() as tmp:
        return write_gif(frames, Path(tmp) / "item.gif", fps=fps).read_bytes()


def _png_bytes(rgb: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(buf, format="PNG")
    return buf.getvalue()


#: Largest ``|seed|`` of a study: it is stored in an SQLite INTEGER (64-bit signed).
MAX_SEED = 2**63 - 1


def _vis_config(attr: Attribution) -> dict[str, Any]:
    """The item's visualization: its recipe's, with heat maps always drawn *hot*.

    Table 2 of "removal-based video explanations" shows Occlusion Sensitivity as cold regions
    and RISE as hot ones; in a study that would let raters tell the methods apart by the
    direction of the colour bar (bright to dark or dark to bright), against the blindness of
    Sec. 4.6.2. Every heat-map item of a study therefore shows the most important pixels at
    the hot (bright) end, and every legend runs dark (least) to bright (most important)
    (docs/fidelity.md, "User study").
    """
    vis = dict((attr.meta.get("recipe") or {}).get("visualization") or {"name": "heatmap"})
    if vis.get("name", "heatmap") == "heatmap" and vis.get("important", "hot") != "hot":
        vis["important"] = "hot"
    return vis


def legend_png(
    vis: dict[str, Any], attr: Attribution | None = None, width: int = 256, height: int = 14
) -> bytes:
    """The colour bar of an item: its visualizer's :class:`~removalx.core.legend.Legend`, no text.

    The colours come from :func:`removalx.display.colorbar.colorbar_row`, the same bar the report and
    ``removalx explain`` draw, left the least and right the most important value. The study
    page labels the ends in words ("less / more important"): no tick values, which could hint
    at the method. ``attr`` is the item's attribution (its scale and, for signed maps, both
    signs); a visualizer without ``legend`` is drawn over a ramp of importance 0 -> 1 instead.
    """
    from removalx.display.colorbar import colorbar_row
    from removalx.display.visualize import legend_of, render

    ramp = torch.linspace(0.0, 1.0, width).expand(1, height, width).contiguous()
    legend = legend_of(attr if attr is not None else Attribution(values=ramp, target=0, meta={}), vis)
    if legend is not None:
        return _png_bytes(np.repeat(colorbar_row(legend, width)[None], height, axis=0))
    grey = torch.full((1, height, width, 3), 0.5)
    return _png_bytes(render(grey, Attribution(values=ramp, target=0, meta={}), vis)[0].numpy())


def render_item(video: torch.Tensor, attr: Attribution, fps: float) -> tuple[bytes, bytes, int, int]:
    """``(GIF of clip | overlay, legend PNG, width, height)`` of one explanation."""
    from removalx.display.output import enlarge, enlarge_factor
    from removalx.display.visualize import render, side_by_side

    vis = _vis_config(attr)
    try:
        overlay = render(video, attr, vis)
    except Exception:  # its visualizer is not installed here: the plain heat map
        vis = {"name": "heatmap"}
        overlay = render(video, attr, vis)
    both = side_by_side(video, overlay)
    both = enlarge(both, enlarge_factor(int(video.shape[1]), MIN_PANEL))
    return _gif_bytes(both, fps), legend_png(vis, attr), int(both.shape[2]), int(both.shape[1])


def _class_name(attr: Attribution) -> str:
    name = attr.meta.get("target_name")
    return str(name).replace("_", " ") if name else f"class {attr.target}"


def _run_recipes(spec: StudySpec, store: Any) -> list[dict[str, Any]]:
    """Explain the dataset's first ``videos`` clips with each recipe (stored ones are reused)."""
    from removalx.core.recipe import parse_overrides
    from removalx.data.datasets import dataset_items
    from removalx.experiments.runner import make_methods, recipe_label, run_items
    from removalx.models import load_model

    common = parse_overrides(spec.overrides)
    recipes = spec.recipes or []
    methods = make_methods(
        [(recipe_label(r), r, common) for r in recipes], spec.recipe_seed, batch_size=spec.batch_size
    )
    model_key = spec.model if spec.weights is None else f"{spec.model}@{spec.weights}"
    dataset_spec = spec.dataset or "zoo:synthetic"
    n = spec.videos or 8
    dataset, items, n = dataset_items(
        dataset_spec, n, frames=spec.frames, size=spec.size, seed=spec.data_seed
    )
    item_list = list(items)
    missing = [
        (it, m)
        for it in item_list
        for m in methods
        if store.find_explanation(it.dataset, it.item, m.recipe_hash, model_key, m.seed) is None
    ]
    if missing:
        model = load_model(spec.model, weights=spec.weights, device=spec.device)
        run_id = store.start_run("study", spec.name, {"recipes": recipes, "videos": n})
        counts = run_items(
            store, iter(item_list), n, methods, [], model, model_key, run_id=run_id, progress=spec.progress
        )
        store.finish_run(run_id, counts.explained, counts.explanations_skipped)
    out = []
    for it in item_list:
        for m in methods:
            eid = store.find_explanation(it.dataset, it.item, m.recipe_hash, model_key, m.seed)
            out.append(
                {"id": eid, "dataset": dataset, "item": it.item, "method": m.label, "model": model_key}
            )
    return out


def _stored(spec: StudySpec, store: Any) -> list[dict[str, Any]]:
    """Stored explanations of every method (but the random baseline) on the videos all of them share."""
    rows = [e for e in store.explanations() if e["method"] != RANDOM]
    if spec.models:
        rows = [e for e in rows if e["model"] in spec.models]
    datasets = sorted({e["dataset"] for e in rows})
    if spec.dataset is not None:
        rows = [e for e in rows if e["dataset"] == spec.dataset]
    elif len(datasets) > 1:
        raise StudyError(
            f"The database holds explanations of {len(datasets)} datasets "
            f"({truncate(', '.join(datasets), 200)}); a study rates one.",
            "Pass --dataset with one of them.",
        )
    if not rows:
        raise StudyError(
            "The database holds no explanation to rate"
            + (f" of dataset {truncate(spec.dataset, 80)!r}" if spec.dataset else "")
            + (" with the models asked for" if spec.models else "")
            + ".",
            "Run `removalx evaluate` or `compare` first, or pass --recipes to explain videos now.",
        )
    # One explanation per (video, method, model): the first stored (lowest id).
    first: dict[tuple[str, str, str], dict[str, Any]] = {}
    for e in rows:
        first.setdefault((e["item"], e["method"], e["model"]), e)
    combos = sorted({(m, k) for _, m, k in first})
    videos = sorted({v for v, _, _ in first if all((v, m, k) in first for m, k in combos)})
    if not videos:
        raise StudyError(
            "No video has an explanation of every method and model "
            f"({truncate(', '.join(f'{m} / {k}' for m, k in combos), 200)}).",
            "Pass --recipes or --models to choose methods that share videos.",
        )
    if spec.videos is not None and spec.videos < len(videos):
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(spec.seed) % 2**63, 1])))
        videos = sorted(videos[i] for i in rng.choice(len(videos), size=spec.videos, replace=False))
    return [{**first[(v, m, k)], "id": first[(v, m, k)]["id"]} for v in videos for m, k in combos]


def create_study(db: str | Path, spec: StudySpec) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Create the study ``spec.name`` in ``db``: returns its items and ``{rater: token}``.

    Raises
    ------
    StudyError
        The study exists already, a rater id is invalid, or nothing can be rated.
    """
    check_spec(spec)
    if not spec.recipes and not Path(db).exists():
        raise StudyError(
            f"{truncate(str(db), 200)} does not exist, so it holds no explanation to rate.",
            "Pass the experiment database of `removalx evaluate/compare`, or --recipes to explain "
            "videos now (that creates the database).",
        )
    new_db = not Path(db).exists()
    try:
        return _create(db, spec)
    except BaseException:
        if new_db and not _holds_explanations(db):  # a failed create leaves no empty database behind
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{db}{suffix}").unlink(missing_ok=True)
        raise


def _holds_explanations(db: str | Path) -> bool:
    """Whether ``db`` stores an explanation (computed by a failed ``--recipes`` run: kept for reuse)."""
    import sqlite3

    if not Path(db).exists():
        return False
    try:
        con = sqlite3.connect(f"{Path(db).resolve().as_uri()}?mode=ro", uri=True)
        try:
            return con.execute("SELECT 1 FROM explanations LIMIT 1").fetchone() is not None
        finally:
            con.close()
    except sqlite3.Error as exc:
        return "no such table" not in str(exc)  # another error: not ours to judge, leave the file


def check_spec(spec: StudySpec) -> None:
    """Refuse an empty or too long study name, invalid or repeated rater ids, an unbounded seed.

    Raises
    ------
    StudyError
        What is wrong, with what was given (truncated) and how to fix it.
    """
    if not spec.name.strip() or len(spec.name) > 200:
        raise StudyError(
            f"Invalid study name {truncate(spec.name, 70)!r}: expected 1 to 200 characters, not only spaces.",
            "Pass --name with a name such as pilot or study_1.",
        )
    if not isinstance(spec.seed, int) or abs(spec.seed) > MAX_SEED:
        raise StudyError(
            f"--seed {truncate(str(spec.seed), 40)} is out of range: expected an integer of at most "
            f"{MAX_SEED} in absolute value.",
            "Pass a smaller seed, e.g. --seed 0.",
        )
    for r in spec.raters:
        check_rater_id(r)
    if len(set(spec.raters)) != len(spec.raters):
        raise StudyError("--raters names a rater twice.", "Give every rater a distinct id.")


def _create(db: str | Path, spec: StudySpec) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """:func:`create_study` once ``spec`` is checked."""
    from removalx.experiments.store import Store

    sdb = StudyDB(db, create=True)
    try:
        sdb.study(spec.name)
    except StudyError:
        pass
    else:
        sdb.close()
        raise StudyError(
            f"A study named {truncate(spec.name, 60)!r} exists already in {truncate(str(db), 200)}.",
            "Choose another --name, or serve the existing one with `removalx study serve`.",
        )
    store = Store(db)
    try:
        chosen = _run_recipes(spec, store) if spec.recipes else _stored(spec, store)
        items = []
        videos: dict[tuple[str, str], torch.Tensor] = {}
        for e in chosen:
            key = (e["dataset"], e["item"])
            if key not in videos:
                v = store.video(*key)
                if v is None:
                    raise StudyError(
                        f"The clip of video {truncate(e['item'], 60)!r} is not stored in the database.",
                        "Re-run `removalx evaluate` on it (it stores the clips), or pass --recipes.",
                    )
                videos[key] = v["video"]
            attr = store.attribution(int(e["id"]))
            media, legend, width, height = render_item(videos[key], attr, spec.fps)
            items.append(
                {
                    "explanation_id": int(e["id"]),
                    "dataset": e["dataset"],
                    "item": e["item"],
                    "method": e["method"],
                    "model": e["model"],
                    "class_name": _class_name(attr),
                    "media": media,
                    "legend": legend,
                    "width": width,
                    "height": height,
                }
            )
        args = {
            k: v for k, v in spec.__dict__.items() if k not in ("raters", "progress", "device", "batch_size")
        }
        args["invited"] = list(spec.raters)  # they enter by their invite link only
        tokens = sdb.create_study(spec.name, spec.seed, QUESTION, args, items, spec.raters)
    finally:
        store.close()
        sdb.close()
    return items, tokens


def invite_url(host: str, port: int, token: str) -> str:
    """The invite link of a rater token for a server on ``host:port``."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/r/{token}/"


def describe(items: Sequence[dict[str, Any]]) -> str:
    """One line: how many items, videos, methods and models a study has (for the experimenter)."""
    methods = sorted({i["method"] for i in items})
    models = sorted({i["model"] for i in items})
    videos = {(i["dataset"], i["item"]) for i in items}
    return (
        f"{len(items)} items: {len(videos)} videos x {len(methods)} methods ({', '.join(methods)}) "
        f"x {len(models)} model{'s' if len(models) > 1 else ''} ({', '.join(models)})"
    )
