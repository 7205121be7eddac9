"""No function in ``removalx/`` or ``removalx_plugins/`` is longer than 100 lines.

A function's length runs from its ``def`` line to the end of its body (``end_lineno - lineno + 1``,
so a docstring and nested functions count toward the function that holds them). A long function
is split into named steps (helpers, small classes) that each read as one thing.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("removalx", "removalx_plugins")
MAX_LINES = 100

#: Argument-parser builders: a flat list of ``add_argument`` / ``add_parser`` calls that reads as
#: the command's help text, so splitting it would only scatter the options of one command. They
#: are exempt by name, and only while their body really builds an argparse parser (see
#: :func:`_builds_parser`). Today only ``removalx/cli/main.py::_parser`` is over the limit.
PARSER_BUILDERS = frozenset(
    {
        "_parser",  # removalx/cli/main.py: the top-level `removalx` parser and its subcommands
        "_common",  # removalx/cli/experiments.py: options shared by evaluate / compare / ablate
        "add_subcommands",  # removalx/cli/experiments.py: the experiment subcommands
        "add_study_parser",  # removalx/cli/study.py: `removalx study create / serve / results`
    }
)
_ARGPARSE_CALLS = frozenset({"add_argument", "add_parser", "add_subparsers", "add_argument_group"})

Function = ast.FunctionDef | ast.AsyncFunctionDef


def _builds_parser(node: Function) -> bool:
    return any(
        isinstance(call, ast.Call)
        and isinstance(call.func, ast.Attribute)
        and call.func.attr in _ARGPARSE_CALLS
        for call in ast.walk(node)
    )


def _long_functions() -> list[str]:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for node in ast.walk(tree):
                if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    continue
                assert node.end_lineno is not None
                length = node.end_lineno - node.lineno + 1
                if length <= MAX_LINES or (node.name in PARSER_BUILDERS and _builds_parser(node)):
                    continue
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({length} lines)")
    return found


def test_no_function_is_over_100_lines() -> None:
    long = _long_functions()
    assert not long, f"Functions over {MAX_LINES} lines (split them into named steps):\n" + "\n".join(long)


def test_the_scan_sees_the_packages() -> None:
    # a moved tree or a wrong ROOT would make the test above pass vacuously
    for package in PACKAGES:
        assert len(list((ROOT / package).rglob("*.py"))) > 10, package
