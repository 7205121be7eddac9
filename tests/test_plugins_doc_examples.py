"""The plugin examples of docs/plugins.md are complete and pass ``check_plugin``.

Every ```python block of the page that starts with ``# my_pkg/<module>.py`` is run as a
module, registered in a local registry next to the built-ins and checked.
"""

from __future__ import annotations

import re
import types
import warnings
from pathlib import Path

import pytest
import torch

from removalx.core.registry import PIPELINE_STAGES, Registry
from removalx.errors import PluginLoadWarning
from removalx.testing import check_plugin
from removalx.testing.check_hand_cases import _quadrants, _run_summary

pytestmark = pytest.mark.usefixtures("rx_one_thread")

DOC = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"
BLOCK = re.compile(r"```python\n(# my_pkg/(\w+)\.py\n.*?)```", re.S)
EXAMPLES = {name: code for code, name in BLOCK.findall(DOC.read_text())}


def _load(name: str) -> tuple[Registry, list[tuple[str, str]]]:
    mod = types.ModuleType(f"doc_example_{name}")
    exec(compile(EXAMPLES[name], f"docs/plugins.md:{name}", "exec"), mod.__dict__)
    reg = Registry()
    reg.register_module(mod)
    added = [(s, n) for s in PIPELINE_STAGES for n in reg.names(s)]
    with warnings.catch_warnings():  # the installed example package also registers time_slices
        warnings.simplefilter("ignore", PluginLoadWarning)
        reg.load_entry_points()  # the built-ins, for the pipeline part of the check
    assert reg.get(*added[0]).module == mod.__name__
    return reg, added


def test_the_page_has_the_worked_examples():
    assert {"time_slices", "frame_noise", "mean_drop"} <= set(EXAMPLES)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_doc_example_passes_check_plugin(name):
    reg, added = _load(name)
    assert len(added) == 1, added
    stage, plugin = added[0]
    check_plugin(stage, plugin, registry=reg)


def test_worked_summary_gives_the_hand_computed_drops():
    reg, _ = _load("mean_drop")
    c = torch.tensor([0.5, 2.0, 1.0, 3.0])
    _, fv = _run_summary(reg.get("summary", "mean_drop").make(), _quadrants(4, 16, 16), c, 5)
    assert torch.allclose(fv, (c.sum() + c) / 2)  # f(full) - mean y(without i) = (S + c_i) / 2


def test_worked_removal_keeps_pixels_and_is_seeded():
    reg, _ = _load("frame_noise")
    video = torch.full((2, 4, 4, 3), 0.5)
    keep = torch.zeros(2, 2, 4, 4)
    keep[0, :, :2] = 1
    removal = reg.get("removal", "frame_noise").make({"amplitude": 0.2})
    removal.prepare(video, None, 3)
    out = removal.apply(video, keep, torch.tensor([0, 1]))
    assert torch.equal(out[0, :, :2], video[:, :2])
    assert (out[:, :, 2:] - 0.5).abs().max() <= 0.2 and (out[1] != 0.5).any()
    assert torch.equal(removal.apply(video, keep[1:], torch.tensor([1])), out[1:])
