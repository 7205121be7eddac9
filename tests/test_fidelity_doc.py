"""docs/fidelity.md stays in step with the recipes and metrics it describes.

Every built-in recipe and metric has rows; every status is one of the three kinds; every
override in the table is valid for the recipes or metrics of its row (so renaming a config
field or a recipe without updating the table fails here).
"""

from __future__ import annotations

import pathlib
import re

import pytest
import yaml

import removalx
from removalx.core.recipe import builtin_recipes, load_recipe

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "fidelity.md").read_text()
RECIPES = set(builtin_recipes())
METRICS = {s.name for s in removalx.get_registry().specs("metric") if s.source == "removalx"}
STATUS = re.compile(r"^(same|paper silent|paper ambiguous|differs)\b")


def _rows() -> list[list[str]]:
    rows = []
    for line in DOC.splitlines():
        if not line.startswith("|") or set(line) <= set("|- "):
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip()[1:-1])]  # "\|" is a literal bar
        if cells[0] == "recipe/metric":
            continue
        assert len(cells) == 6, f"a fidelity row needs 6 cells, got {len(cells)}: {line[:80]}"
        rows.append(cells)
    return rows


ROWS = _rows()


def _names(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def _covered() -> set[str]:
    return {n for row in ROWS for n in _names(row[0])}


def test_table_has_rows() -> None:
    assert len(ROWS) > 50


@pytest.mark.parametrize("name", sorted(RECIPES | METRICS))
def test_every_builtin_recipe_and_metric_has_rows(name: str) -> None:
    assert name in _covered(), f"{name} has no row in docs/fidelity.md"


@pytest.mark.parametrize("row", ROWS, ids=[f"{r[0][:40]}|{r[1][:30]}" for r in ROWS])
def test_row_names_and_status(row: list[str]) -> None:
    for name in _names(row[0]):
        assert name in RECIPES | METRICS, f"{name!r} is neither a built-in recipe nor a metric"
    assert STATUS.match(row[4]), f"status must start with same / paper silent / differs: {row[4][:60]!r}"


def _overrides(cell: str) -> list[str]:
    return [t for t in _names(cell) if "=" in t or t.startswith("recipe:")]


OVERRIDE_ROWS = [r for r in ROWS if _overrides(r[5])]


@pytest.mark.parametrize("row", OVERRIDE_ROWS, ids=[f"{r[0][:40]}|{r[1][:30]}" for r in OVERRIDE_ROWS])
def test_overrides_are_valid(row: list[str]) -> None:
    tokens = _overrides(row[5])
    names = _names(row[0])
    assert names, "a row with an override must name its recipes or metrics"
    for token in tokens:
        if token.startswith("recipe:"):
            assert token.split(":", 1)[1] in RECIPES, f"{token}: no such built-in recipe"
            continue
        for name in names:
            if name in RECIPES:
                load_recipe(name, overrides=[token])
            else:
                key, _, raw = token.partition("=")
                removalx.get_registry().get("metric", name).make({key: yaml.safe_load(raw)})
