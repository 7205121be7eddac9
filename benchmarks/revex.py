#!/usr/bin/env python
"""removalx against REVEX, the removal paper's research code, on the same model and clip.

REVEX (Gaya-Morey et al., "REVEX: A Unified Framework for Removal-Based Explainable Artificial
Intelligence in Video", arXiv 2401.11796; github.com/Xavi3398/revex_framework) is not
vendored: pass ``--revex PATH`` to a local checkout (its ``decord`` import, used only to read
video files, is stubbed when decord is not installed). Matching methods, black removal
(``hide_color=0``), the target class's probability, one torch thread:

* ``occlusion3d`` vs REVEX ``ConvolutionalPerturber`` (Video SOS): window = a 4x7x7 grid cell,
  stride half a window, the value summary.
* ``univariate_lv`` vs ``AllButOnePerturber`` (Video UP) and ``loco_lv`` vs ``SinglePerturber``
  (Video LOCO) on 3D SLIC (200 segments, compactness 20, spacing (0.2, 1, 1)), the difference.

Timed: removalx's explanation without segmentation (``timings`` total minus segmentation);
REVEX's ``perturb`` (perturbation and forward passes) and ``explain``. REVEX's batch is its
default of 10. removalx runs three times per repeat: with the previous default batch
(``--old-batch``, 32), with today's default (``min(memory bound, 8)`` on the CPU) and with
``batch_size="auto"`` (the first tuned run of the process includes the probes, in its
``batch_tuning`` time; later runs use the cached choice). Per clip = time / forward passes.
Runs are interleaved; the minimum over repeats is reported, and the first tuned run's time
with its probes is printed separately.

``python benchmarks/revex.py --revex ~/src/revex_framework``; without ``--revex`` only
removalx's batch-size effect (old default, default, tuned) is measured.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import types
from pathlib import Path
from typing import Any

import numpy as np
import torch

import removalx
from removalx.pipeline.batches import clear_tuned_batch_sizes
from removalx.zoo.data import make_clip
from removalx.zoo.models import load_zoo_model

#: removalx recipe -> (REVEX perturber type, REVEX explainer type, explainer options)
PAIRS = {
    "occlusion3d": ("convolutional", "value", {}),
    "univariate_lv": ("allbutone", "difference", {"invert": True}),
    "loco_lv": ("single", "difference", {}),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--revex", type=Path, default=None, help="a local REVEX checkout (revex_framework/)")
    p.add_argument("--model", default="r3d_tiny", help="zoo model (default r3d_tiny, 16x56x56)")
    p.add_argument("--recipes", default=",".join(PAIRS), help="comma-separated, of: " + ", ".join(PAIRS))
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--old-batch", type=int, default=32, help="the previous default CPU batch")
    p.add_argument("--revex-batch", type=int, default=10, help="REVEX's batch (its default, 10)")
    p.add_argument("--json", type=Path, default=None)
    return p.parse_args(argv)


def import_revex(path: Path) -> Any:
    """REVEX's ``Xai`` and ``Pipeline`` from a checkout (decord stubbed if missing: only video files need it)."""
    try:
        import decord  # noqa: F401
    except ImportError:
        sys.modules["decord"] = types.ModuleType("decord")
    root = path.expanduser().resolve()
    if not (root / "revex_framework" / "xai.py").is_file():
        raise SystemExit(
            f"--revex {str(path)[:200]!r}: expected a REVEX checkout (revex_framework/xai.py in it)."
        )
    sys.path.insert(0, str(root))
    import revex_framework.pipelines as pipelines  # type: ignore[import-not-found]
    import revex_framework.xai as xai  # type: ignore[import-not-found]

    return types.SimpleNamespace(Xai=xai.Xai, Pipeline=pipelines.Pipeline)


def time_removalx(
    recipe: str, clf: removalx.VideoClassifier, clip: torch.Tensor, target: int, bs: Any
) -> dict:
    ex = removalx.Explainer.from_recipe(recipe, seed=0, progress=False)
    attr = ex.explain(clf, clip, target=target, batch_size=bs)
    assert isinstance(attr, removalx.Attribution)
    t = attr.meta["timings"]
    seconds = sum(t.values()) - t.get("segmentation", 0.0)
    n = int(attr.meta["n_forward"])
    tuning_s = float(t.get("batch_tuning", 0.0))
    return {"s": seconds, "n_forward": n, "forward_batch": int(attr.meta["batch_size"]), "tuning_s": tuning_s}


def time_revex(
    xai: Any, recipe: str, clf: removalx.VideoClassifier, video_u8: np.ndarray, target: int, bs: int
) -> dict:
    per_type, exp_type, exp_opts = PAIRS[recipe]
    n_calls = [0]

    def classifier_fn(batch: np.ndarray) -> np.ndarray:
        n_calls[0] += len(batch)
        x = torch.from_numpy(np.ascontiguousarray(batch)).float().div_(255.0)
        with torch.inference_mode():
            return torch.softmax(clf(x), dim=1).numpy()

    seg: dict[str, Any]
    per: dict[str, Any]
    if per_type == "convolutional":
        seg = {"type": "void"}
        per = {"type": per_type, "hide_color": 0, "kernel_size": [4, 7, 7], "stride": [2, 2, 2]}
    else:
        seg = {"type": "slic", "n_segments": 200, "compactness": 20, "spacing": [0.2, 1, 1]}
        per = {"type": per_type, "hide_color": 0}
    # REVEX's ConvolutionalPerturber fails without its progress bar (an unbound local): keep it on,
    # silenced through tqdm's TQDM_DISABLE (set in main)
    per.update(batch_size=bs, progress_bar=per_type == "convolutional")
    pipe = xai.Pipeline(
        seg=seg, per=per, exp={"type": exp_type, "label_to_explain": target, **exp_opts}, vis={}
    )
    x = xai.Xai(video_u8, classifier_fn, pipe)
    x.segment()
    t0 = time.perf_counter()
    x.perturb()
    x.explain()
    return {"s": time.perf_counter() - t0, "n_forward": n_calls[0], "forward_batch": bs}


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    os.environ.setdefault("TQDM_DISABLE", "1")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    module, meta = load_zoo_model(args.model)
    clf = removalx.VideoClassifier(module, layout=meta["layout"], mean=meta.get("mean"), std=meta.get("std"))
    t, h, _ = meta["input_size"]
    # the clip as REVEX sees it (uint8) and the same values in [0, 1] for removalx
    video_u8 = (make_clip(0, seed=0, frames=t, size=h).video.numpy() * 255).round().astype(np.uint8)
    clip = torch.from_numpy(video_u8).float() / 255.0
    with torch.inference_mode():
        target = int(clf(clip[None]).argmax())
    xai = import_revex(args.revex) if args.revex else None
    clear_tuned_batch_sizes()
    rows: dict[str, dict[str, list[dict]]] = {}
    for _ in range(args.repeat):
        for recipe in args.recipes.split(","):
            r = rows.setdefault(recipe, {"old": [], "default": [], "tuned": [], "revex": []})
            r["old"].append(time_removalx(recipe, clf, clip, target, args.old_batch))
            r["default"].append(time_removalx(recipe, clf, clip, target, None))
            r["tuned"].append(time_removalx(recipe, clf, clip, target, "auto"))
            if xai is not None:
                r["revex"].append(time_revex(xai, recipe, clf, video_u8, target, args.revex_batch))
    report(rows, args)
    first = next(r["tuned"][0] for r in rows.values())
    print(f"first tuned run (with the probes): {first['s']:.2f} s, of which probes {first['tuning_s']:.2f} s")
    out = {"rows": rows, "python": platform.python_version(), "torch": torch.__version__, "args": vars(args)}
    if args.json:
        args.json.write_text(json.dumps(out, default=str, indent=1))
    return out


def report(rows: dict[str, dict[str, list[dict]]], args: argparse.Namespace) -> None:
    print(f"model {args.model}, {args.threads} thread(s), min over {args.repeat} repeat(s)")
    head = "| recipe | variant | batch | forward passes | s | ms/clip | vs REVEX |"
    print(head + "\n|---|---|---:|---:|---:|---:|---:|")
    for recipe, r in rows.items():
        ref = min(x["s"] for x in r["revex"]) if r["revex"] else None
        for variant in ("old", "default", "tuned", "revex"):
            if not r[variant]:
                continue
            best = min(r[variant], key=lambda x: x["s"])
            ratio = f"{best['s'] / ref:.2f}" if ref else "-"
            ms = 1e3 * best["s"] / max(best["n_forward"], 1)
            print(
                f"| {recipe} | {variant} | {best['forward_batch']} | {best['n_forward']} | {best['s']:.2f} "
                f"| {ms:.2f} | {ratio} |"
            )


if __name__ == "__main__":
    main()
