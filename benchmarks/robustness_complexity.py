"""Robustness and complexity metrics of a few built-in methods on one synthetic zoo clip.

Usage: ``.venv/bin/python benchmarks/robustness_complexity.py gradient gradient_x_input smoothgrad grad_cam``
(one CPU thread, ``zoo:r3d_tiny``, an 8x32x32 clip, seed 0, 5 perturbed clips per noise metric).
"""

from __future__ import annotations

import sys
import time

import torch

import removalx
from removalx.models.loading import load_model
from removalx.zoo.data import make_clip

METRICS = [
    ("max_sensitivity", {"n_samples": 5}),
    ("max_sensitivity", {"perturbation": "frame_shift"}),
    ("ros", {"n_samples": 5}),
    ("local_lipschitz", {"n_samples": 5}),
    ("sparseness", {}),
    ("complexity", {}),
]


def main(recipes: list[str]) -> None:
    torch.set_num_threads(1)
    model = load_model("zoo:r3d_tiny")
    video = make_clip(0, 0, frames=8, size=32).video
    reg = removalx.get_registry()
    for recipe in recipes:
        ex = removalx.Explainer.from_recipe(recipe, seed=0, progress=False)
        attr = ex.explain_clip(model, video, None)

        def explain(m, v, t, ex=ex):  # type: ignore[no-untyped-def]
            return ex.explain_clip(m, v, t, progress=False)

        row = [recipe]
        for name, cfg in METRICS:
            t0 = time.perf_counter()
            out = reg.make("metric", name, cfg).score(model, video, attr, explain=explain, seed=0)
            label = name + (f"/{cfg['perturbation']}" if "perturbation" in cfg else "")
            row.append(f"{label}={out['value']:.3g} ({time.perf_counter() - t0:.2f}s)")
        print(" | ".join(row), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or ["gradient", "gradient_x_input", "smoothgrad", "grad_cam"])
