"""CI smoke test of the plain (non-dev) install, run from outside the checkout.

Checks that the installed package (not the source tree) loads every built-in plugin with
strict plugin loading, validates every built-in recipe and builds each of its stages, and
explains the bundled demo clip with a removal recipe and with gradient explainers.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ["REMOVALX_STRICT_PLUGINS"] = "1"

import removalx
from removalx.cli import main
from removalx.core.recipe import RECIPE_STAGES, builtin_recipes
from removalx.core.registry import get_registry

here = Path(removalx.__file__).resolve()
if "site-packages" not in here.parts:
    sys.exit(f"removalx was imported from {here}, not from the installed package")

registry = get_registry()
failures = getattr(registry, "failures", [])
if failures:
    sys.exit(f"plugins failed to load: {failures}")
recipes = builtin_recipes()
for name in recipes:
    explainer = removalx.Explainer.from_recipe(name)
    for stage in RECIPE_STAGES:
        explainer._make(stage)
print(f"{len(recipes)} built-in recipes valid, every stage built")

#: recipe -> extra flags: a removal recipe, a Captum-based explainer and Grad-CAM.
RUNS = {"lime3d": ["--set", "sample_selection.n_samples=50"], "gradient": [], "grad_cam": []}
with tempfile.TemporaryDirectory() as tmp:
    for recipe, extra in RUNS.items():
        out = Path(tmp) / recipe
        code = main(["explain", "--recipe", recipe, "--quiet", "--out", str(out), *extra])
        gif = out / "overlay.gif"
        if code != 0 or not gif.is_file() or gif.stat().st_size == 0:
            sys.exit(
                f"`removalx explain --recipe {recipe}` exited {code}; overlay.gif written: {gif.is_file()}"
            )
        print(f"explain --recipe {recipe}: ok")
