"""The CLI's parser comes up without torch; the package's public names are imported lazily (PEP 562)."""

from __future__ import annotations

import json
import subprocess
import sys

import removalx

HEAVY = ("torch", "torchvision", "numpy", "scipy", "matplotlib", "captum", "cv2", "skimage")


def _modules_after(code: str) -> list[str]:
    """Heavy modules imported by ``code`` in a fresh interpreter."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_building_the_parser_imports_no_torch():
    code = (
        "from removalx.cli.main import _parser, main\n"
        "_parser()\n"
        "for argv in (['--help'], ['explain', '--help'], ['report', '--help']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
    )
    assert _modules_after(code) == []


def test_import_removalx_imports_no_torch_until_a_name_is_used():
    assert _modules_after("import removalx\nremovalx.RemovalxError") == []
    assert "torch" in _modules_after("from removalx import Explainer")


def test_every_public_name_resolves_to_its_module():
    import importlib

    for name in removalx.__all__:
        value = getattr(removalx, name)
        if name in removalx._LAZY:
            assert value is getattr(importlib.import_module(removalx._LAZY[name]), name), name
    assert set(removalx._LAZY) <= set(removalx.__all__)
    assert set(removalx._LAZY) <= set(dir(removalx))
    try:
        removalx.no_such_name  # noqa: B018
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("an unknown attribute must raise AttributeError")
