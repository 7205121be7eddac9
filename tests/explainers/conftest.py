"""Shared fixtures of the explainer tests."""

from __future__ import annotations

import pytest
import torch

from removalx.core.registry import Registry, get_registry


@pytest.fixture(autouse=True)
def _one_thread():
    # Tiny tensors: thread start-up dominates on a shared 2-core machine.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def reg() -> Registry:
    """The installed plugins (the explainers register through entry points)."""
    return get_registry()
