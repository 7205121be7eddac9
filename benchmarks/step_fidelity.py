#!/usr/bin/env python
"""Does STEP localise the evidence on a confident model? Probability vs logit reward.

Runs built-in recipes (default ``step`` and ``step_logit``, the authors' optimiser: 1200
iterations; any recipe works, e.g. ``grad_cam``) on a model (default ``zoo:r3d_tiny``) and the
demo clip (``removalx.zoo.data.demo_clip()``, 16x112x112, target = the clip's label) and
prints, per recipe:

* ``ring@10%`` -- the fraction of the ring (``clip.evidence``) that lies in the top 10 % of
  the map (chance: 0.10);
* for STEP / EP-3D, the same for the smallest-area mask (``meta["masks"][0]``, v = 0.05) and
  the reward of each preserved clip (``meta["area_rewards"]``); ``Phi_c`` of the clean clip;
* the wall time of ``explain``.

Example::

    .venv/bin/python benchmarks/step_fidelity.py --threads 2
    .venv/bin/python benchmarks/step_fidelity.py --recipes step_torchray --set explainer.iterations=200
    .venv/bin/python benchmarks/step_fidelity.py --model zoo:cnn_gru --recipes grad_cam grad_cam_step

Timings depend on the machine and its load; they are not asserted anywhere.
"""

from __future__ import annotations

import argparse
import time

import torch

import removalx
from removalx.core.recipe import parse_overrides
from removalx.models import load_model
from removalx.zoo.data import demo_clip


def ring_in_top(values: torch.Tensor, evidence: torch.Tensor, fraction: float = 0.10) -> float:
    """Share of the evidence pixels among the ``fraction`` highest values of ``values``."""
    k = int(fraction * values.numel())
    top = values.flatten().topk(k).indices
    return float(evidence.flatten()[top].float().sum() / evidence.sum())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipes", nargs="+", default=["step", "step_logit"])
    ap.add_argument("--model", default="zoo:r3d_tiny")
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0 = default)")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="recipe overrides")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    model = load_model(args.model)
    clip = demo_clip()
    with torch.no_grad():
        p_clean = float(torch.softmax(model(clip.video[None]), 1)[0, clip.label])
    print(
        f"model {args.model}, demo clip {tuple(clip.video.shape)}, target {clip.label}, Phi_c = {p_clean:.6f}"
    )
    print(f"ring: {int(clip.evidence.sum())} px = {float(clip.evidence.float().mean()):.4f} of the clip")
    overrides = parse_overrides(args.set)
    for name in args.recipes:
        ex = removalx.Explainer.from_recipe(name, overrides=overrides, progress=False)
        t0 = time.perf_counter()
        a = ex.explain(model, clip.video, clip.label)
        seconds = time.perf_counter() - t0
        line = f"{name:14s} ring@10% map={ring_in_top(a.values, clip.evidence):.3f}"
        if "masks" in a.meta:  # step / ep3d
            rewards = ", ".join(f"{r:.4f}" for r in a.meta["area_rewards"])
            line += (
                f" mask(v={a.meta['areas'][0]})={ring_in_top(a.meta['masks'][0], clip.evidence):.3f};"
                f" iterations={a.meta['iterations']} reward={a.meta['reward']} area rewards [{rewards}]"
            )
        if "layer" in a.meta:  # grad_cam
            line += f"; layer {a.meta['layer']} {a.meta['layer_shape']}"
        print(f"{line}; {seconds:.1f} s", flush=True)


if __name__ == "__main__":
    main()
