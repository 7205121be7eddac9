"""Shared fixture of the metric tests: a registry with every built-in metric plugin."""

from __future__ import annotations

import pytest

from removalx.core.registry import Registry


@pytest.fixture(scope="module")
def registry() -> Registry:
    """The installed plugins, with the metric modules registered even without entry points."""
    import removalx_plugins.metrics.insertion_deletion as a
    import removalx_plugins.metrics.minimal_mask as b
    import removalx_plugins.metrics.pointing_game as c
    import removalx_plugins.metrics.saliency as d

    reg = Registry()
    reg.load_entry_points()
    for m in (a, b, c, d):
        if not reg.pm.is_registered(m):
            reg.register_module(m)
    return reg
