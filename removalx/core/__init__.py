"""The engine's contracts, the bottom layer above :mod:`removalx.errors` and :mod:`removalx.files`.

What every other wing and every plugin builds on: the data types (:mod:`~removalx.core.types`),
the seven stages' interfaces (:mod:`~removalx.core.stages`), the model contract
(:mod:`~removalx.core.classifier`), the plugin hooks and registry
(:mod:`~removalx.core.hookspecs`, :mod:`~removalx.core.registry`), recipes
(:mod:`~removalx.core.recipe`), sample plans and coalitions (:mod:`~removalx.core.plans`,
:mod:`~removalx.core.coalitions`), counter-based random numbers (:mod:`~removalx.core.rng`),
devices and progress lines. It imports no model loader, video reader, display, metric,
experiment or command-line code (docs/architecture.md; import-linter holds it in CI).
"""
