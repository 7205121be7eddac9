"""Shared fixture of the AOSA tests: the registry of installed plugins (AOSA's included)."""

from __future__ import annotations

import pytest

from removalx.core.registry import Registry, get_registry


@pytest.fixture(scope="session")
def reg() -> Registry:
    return get_registry()
