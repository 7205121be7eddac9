"""pytest fixtures for plugin authors (loaded automatically through the ``pytest11`` entry point)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from removalx.core.classifier import VideoClassifier
from removalx.core.registry import Registry, get_registry
from removalx.testing.data import ToyClassifier, tiny_video


@pytest.fixture
def rx_tiny_video() -> torch.Tensor:
    """``float32[4, 16, 16, 3]`` clip with a bright square moving right."""
    return tiny_video(frames=4, size=16)


@pytest.fixture
def rx_toy_model() -> VideoClassifier:
    """A seeded 3-class tiny 3D CNN wrapped as a ``VideoClassifier``."""
    return VideoClassifier(ToyClassifier(n_classes=3))


@pytest.fixture
def rx_registry() -> Registry:
    """The registry of every installed plugin."""
    return get_registry()


@pytest.fixture
def rx_one_thread() -> Iterator[None]:
    """Run the test on one torch thread (restored after): on tiny tensors the thread pool's
    start-up costs more than it saves, most of all on a loaded machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
