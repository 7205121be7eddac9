"""Shared fixtures of the AOSA tests: a registry with the AOSA plugins loaded as local modules."""

from __future__ import annotations

import importlib

import pytest

from removalx.registry import Registry

AOSA_MODULES = (
    "removalx_plugins.segmentation.flow_tubes",
    "removalx_plugins.selection.cooccurrence",
    "removalx_plugins.removal.conditional",
    "removalx_plugins.behavior.taylor",
    "removalx_plugins.summary.aosa_map",
)


def aosa_registry() -> Registry:
    """Installed plugins plus the AOSA modules (works before their entry points are installed)."""
    reg = Registry()
    reg.load_entry_points()
    for name in AOSA_MODULES:
        reg.register_module(importlib.import_module(name))  # no-op if an entry point loaded it
    return reg


@pytest.fixture(scope="session")
def reg() -> Registry:
    return aosa_registry()
