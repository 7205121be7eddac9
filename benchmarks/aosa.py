"""AOSA benchmark: pointing game on synthetic moving-object clips, and cost of OSA / AOSA / AOSA-approx.

Uchiyama et al. (AOSA), Sec. 4.2 (spatial pointing game: a hit when a 7-pixel circle around
the frame's maximum meets the object's bounding box) and Sec. 4.5 / Table 3 (generation time).

1. Pointing game over ``--clips`` zoo clips (``removalx.zoo.data.make_clip``, 16 x 112 x 112):
   with ``zoo:r3d_tiny`` if its weights exist, else with a model whose evidence is known --
   ``LinearVideoModel`` whose target logit is the mean brightness of the ring pixels (the
   per-pixel evidence mask). Recipes: ``osa3d``, ``aosa_sgl``, ``aosa``, ``aosa_cs``,
   ``aosa_sgl_approx``, ``aosa_approx``, and variants with another map formula
   (``recipe[formula]``, e.g. ``aosa[occlusion_difference]``) or other overrides
   (``recipe[key=value,...]``). ``--recipes`` picks some.
2. Time and forward/backward passes of ``osa3d``, ``aosa``, ``aosa_approx`` on torchvision
   ``r3d_18`` with random weights (``--timing-size``, default 16 x 112 x 112).

Run: ``python benchmarks/aosa.py [--clips 20] [--recipes aosa aosa_sgl] [--timing-size 16 112] [--skip-timing]``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

import removalx
from removalx.core.registry import Registry, get_registry
from removalx.testing import LinearVideoModel
from removalx.zoo.data import make_clip
from removalx_plugins.segmentation.flow_tubes import FlowTubeSpace

POINTING = [
    "osa3d",
    "aosa_sgl",
    "aosa",
    "aosa_cs",
    "aosa_sgl_approx",
    "aosa_approx",
    "aosa_sgl[occlusion_difference]",
    "aosa[occlusion_difference]",
    "aosa_approx[occlusion_difference]",
    "aosa[eq2_literal]",
    "aosa_approx[behavior.adjust=false]",
]
TIMING = ["osa3d", "aosa", "aosa_approx"]


def registry() -> Registry:
    """The installed plugins (the AOSA stages register through entry points)."""
    return get_registry()


def pointing_hits(values: torch.Tensor, evidence: torch.Tensor, radius: float = 7.0) -> tuple[int, int]:
    """S-PT (Sec. 4.2): per frame with evidence, a hit if the circle of ``radius`` around the
    maximum intersects the bounding box of the evidence. Returns ``(hits, frames)``."""
    hits = frames = 0
    w = values.shape[2]
    for t in range(values.shape[0]):
        ys, xs = evidence[t].nonzero(as_tuple=True)
        if ys.numel() == 0:
            continue
        frames += 1
        p = int(values[t].argmax())
        py, px = divmod(p, w)
        dy = max(int(ys.min()) - py, 0, py - int(ys.max()))
        dx = max(int(xs.min()) - px, 0, px - int(xs.max()))
        hits += int(dy * dy + dx * dx <= radius * radius)
    return hits, frames


def evidence_model(evidence: torch.Tensor) -> removalx.VideoClassifier:
    """Class 0 logit = 4 x mean brightness of the evidence pixels; class 1 = constant 1.5."""
    w = torch.zeros(2, *evidence.shape, 3)
    w[0] = evidence[..., None].float() * (4.0 / (3 * evidence.sum()))
    return removalx.VideoClassifier(LinearVideoModel(w, torch.tensor([0.0, 1.5])), layout="BTHWC")


def make_explainer(reg: Registry, spec: str) -> removalx.Explainer:
    """``recipe``, ``recipe[formula]`` (``summary.formula`` overridden) or ``recipe[key=value,...]``."""
    name, _, inner = spec.partition("[")
    items = [x for x in inner.rstrip("]").split(",") if x]
    overrides = [x if "=" in x else f"summary.formula={x}" for x in items]
    return removalx.Explainer.from_recipe(name, overrides=overrides or None, registry=reg, progress=False)


def run_pointing(reg: Registry, n_clips: int, recipes: list[str]) -> None:
    zoo_weights = Path(removalx.__file__).parent / "zoo" / "weights" / "r3d_tiny.pt"
    use_zoo = zoo_weights.is_file()
    zoo = removalx.load_model("zoo:r3d_tiny") if use_zoo else None
    print(
        f"== pointing game (Sec. 4.2), {n_clips} clips 16x112x112, model: "
        f"{'zoo:r3d_tiny' if use_zoo else 'LinearVideoModel on the evidence mask (no zoo weights)'}"
    )
    explainers = {r: make_explainer(reg, r) for r in recipes}
    tot = {r: [0, 0] for r in recipes}
    secs = {r: 0.0 for r in recipes}
    for i in range(n_clips):
        clip = make_clip(i % 4, 1000 + i, frames=16, size=112)
        model = zoo if zoo is not None else evidence_model(clip.evidence)
        target = clip.label if zoo is not None else 0
        for r, ex in explainers.items():
            t0 = time.perf_counter()
            attr = ex.explain(model, clip.video, target=target)
            secs[r] += time.perf_counter() - t0
            h, f = pointing_hits(attr.importance(), clip.evidence)
            tot[r][0] += h
            tot[r][1] += f
    print(f"{'recipe':<36}{'hit rate':>10}{'hits/frames':>14}{'s/clip':>9}")
    for r in recipes:
        h, f = tot[r]
        print(f"{r:<36}{h / max(f, 1):>10.3f}{f'{h}/{f}':>14}{secs[r] / n_clips:>9.2f}")


def run_timing(reg: Registry, frames: int, size: int, recipes: list[str]) -> None:
    model = removalx.load_model("torchvision:r3d_18", weights="none")
    clip = make_clip(1, 7, frames=frames, size=size)
    print(
        f"== cost (Sec. 4.5, Table 3) on torchvision r3d_18 (random weights), clip {frames}x{size}x{size}, "
        f"{torch.get_num_threads()} threads"
    )
    with torch.inference_mode():
        model(clip.video[None].expand(4, *clip.video.shape))  # warm-up
        t0 = time.perf_counter()
        model(clip.video[None].expand(8, *clip.video.shape))
        per_clip = (time.perf_counter() - t0) / 8
    print(f"forward pass: {per_clip:.3f} s/clip")
    print(
        f"{'recipe':<14}{'time s':>9}{'forward':>9}{'backward':>10}{'saved':>8}{'model s':>9}{'perturb s':>10}"
    )
    times = {}
    for r in recipes:
        model.reset_count()
        ex = removalx.Explainer.from_recipe(r, registry=reg, progress=False, batch_size=8)
        t0 = time.perf_counter()
        attr = ex.explain(model, clip.video, target=0)
        times[r] = time.perf_counter() - t0
        b = attr.meta.get("behavior", {})
        tm = attr.meta["timings"]
        print(
            f"{r:<14}{times[r]:>9.1f}{attr.meta['n_forward']:>9}{model.n_backward:>10}"
            f"{b.get('n_forward_saved', 0):>8}{tm.get('model', 0):>9.1f}{tm.get('perturb', 0):>10.1f}"
        )
    for a, b in (("aosa", "aosa_approx"), ("osa3d", "aosa")):
        if a in times and b in times:
            print(f"speed-up {a} / {b}: {times[a] / times[b]:.1f}x")


def write_gifs(reg: Registry, out: Path) -> None:
    """``docs/img/aosa_tubes.gif`` (tubes on the demo clip) and ``docs/img/aosa_attribution.gif``."""
    from removalx.video.io import write_gif
    from removalx.zoo.data import demo_clip

    clip = demo_clip()
    ex = removalx.Explainer.from_recipe("aosa", registry=reg, progress=False)
    attr = ex.explain(evidence_model(clip.evidence), clip.video, target=0)
    space = attr.space
    assert isinstance(space, FlowTubeSpace)
    frames = (clip.video * 255).round().to(torch.uint8).clone()
    path = torch.tensor(clip.meta["target_path"])
    on = int((space.anchors - path[0]).norm(dim=1).argmin())
    sel = reg.make("feature_selection", "cooccurrence", {"k": 5})
    sel.bind(space)
    group = [on, *sel.partners[on].tolist()]
    others = [i for i in range(0, space.n_features, 23) if i not in group]
    colours = {i: (255, 40, 40) for i in group} | {i: (40, 200, 255) for i in others}
    h, w = space.shape[1:]
    mh, mw = space.mask_size
    for i, col in colours.items():
        for t in range(space.shape[0]):
            if not bool(space.alive[i, t]):
                continue
            cx, cy = space.trajectories[i, t].round().long().tolist()
            y0, x0 = max(cy - mh // 2, 0), max(cx - mw // 2, 0)
            y1, x1 = min(cy - mh // 2 + mh, h) - 1, min(cx - mw // 2 + mw, w) - 1
            c = torch.tensor(col, dtype=torch.uint8)
            frames[t, y0, x0 : x1 + 1] = c
            frames[t, y1, x0 : x1 + 1] = c
            frames[t, y0 : y1 + 1, x0] = c
            frames[t, y0 : y1 + 1, x1] = c
    out.mkdir(parents=True, exist_ok=True)
    write_gif(frames, out / "aosa_tubes.gif", fps=4)
    vis = reg.make("visualization", "heatmap", {"top_fraction": 1.0, "stretch": True})
    write_gif(vis.frames(clip.video, attr), out / "aosa_attribution.gif", fps=4)
    print(f"wrote {out / 'aosa_tubes.gif'} and {out / 'aosa_attribution.gif'}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=20)
    ap.add_argument("--recipes", nargs="+", default=POINTING, metavar="RECIPE", help="pointing-game recipes")
    ap.add_argument("--timing-size", type=int, nargs=2, default=(16, 112), metavar=("FRAMES", "SIZE"))
    ap.add_argument("--timing-recipes", nargs="+", default=TIMING, metavar="RECIPE")
    ap.add_argument("--skip-timing", action="store_true")
    ap.add_argument("--skip-pointing", action="store_true")
    ap.add_argument("--write-gifs", metavar="DIR", help="write the docs GIFs (docs/img) and exit")
    args = ap.parse_args(argv)
    reg = registry()
    if args.write_gifs:
        write_gifs(reg, Path(args.write_gifs))
        return
    if not args.skip_pointing:
        run_pointing(reg, args.clips, args.recipes)
    if not args.skip_timing:
        frames, size = args.timing_size
        run_timing(reg, frames, size, args.timing_recipes)


if __name__ == "__main__":
    main()
