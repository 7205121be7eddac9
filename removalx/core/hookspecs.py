"""Hook specifications: one registration hook per stage (docs/plugins.md).

A plugin module implements one or more of these hooks and is made known through the
``removalx`` entry-point group, exactly like the built-in plugins in ``removalx_plugins``::

    from removalx.plugin import hookimpl

    @hookimpl
    def removalx_register_segmenters(registry):
        registry.add("my_segmenter", MyConfig, MySegmenter)

``registry.add(name, config_class, factory)`` registers one option of the stage;
``factory(config)`` must return an object implementing the stage's interface in
:mod:`removalx.core.stages`.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("removalx")
hookimpl = pluggy.HookimplMarker("removalx")


@hookspec
def removalx_register_segmenters(registry):  # type: ignore[no-untyped-def]
    """Register segmentation plugins (:class:`removalx.core.stages.Segmenter`)."""


@hookspec
def removalx_register_feature_selectors(registry):  # type: ignore[no-untyped-def]
    """Register feature-selection plugins (:class:`removalx.core.stages.FeatureSelector`)."""


@hookspec
def removalx_register_sample_selectors(registry):  # type: ignore[no-untyped-def]
    """Register sample-selection plugins (:class:`removalx.core.stages.SampleSelector`)."""


@hookspec
def removalx_register_removals(registry):  # type: ignore[no-untyped-def]
    """Register feature-removal plugins (:class:`removalx.core.stages.Removal`)."""


@hookspec
def removalx_register_behaviors(registry):  # type: ignore[no-untyped-def]
    """Register model-behavior plugins (:class:`removalx.core.stages.Behavior`)."""


@hookspec
def removalx_register_summaries(registry):  # type: ignore[no-untyped-def]
    """Register summary plugins (:class:`removalx.core.stages.Summary`)."""


@hookspec
def removalx_register_visualizers(registry):  # type: ignore[no-untyped-def]
    """Register visualization plugins (:class:`removalx.core.stages.Visualizer`)."""


@hookspec
def removalx_register_explainers(registry):  # type: ignore[no-untyped-def]
    """Register whole-method explainers (:class:`removalx.core.stages.Explainer`)."""


@hookspec
def removalx_register_metrics(registry):  # type: ignore[no-untyped-def]
    """Register metrics (:class:`removalx.core.stages.Metric`)."""


@hookspec
def removalx_register_models(registry):  # type: ignore[no-untyped-def]
    """Register model adapters: ``factory(config) -> VideoClassifier``."""
