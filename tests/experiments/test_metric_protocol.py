"""evaluate / compare print the metric protocol, reuse scores only under the same protocol, pool pointing games."""

from __future__ import annotations

from pathlib import Path

import pytest

from removalx.cli.experiments import main
from removalx.experiments.runner import MetricSpec, aggregate, alpha_table
from removalx.experiments.store import Store
from removalx.metrics import pooled_hit_rate
from tests.experiments.conftest import GRID, TINY


def test_hash_follows_the_resolved_protocol() -> None:
    plain = MetricSpec("deletion", "deletion", {})
    same = MetricSpec("deletion", "deletion", {"preset": "removal"})  # the default preset, said aloud
    other = MetricSpec("deletion", "deletion", {"preset": "step"})
    assert plain.hash == same.hash
    assert plain.hash != other.hash
    assert MetricSpec("deletion", "deletion", {"preset": "step", "steps": 28}).hash != other.hash


def test_evaluate_prints_the_preset_and_pools_pointing(tmp_path: Path, model_spec: str, capsys) -> None:
    db = tmp_path / "r.db"
    argv = [
        "evaluate",
        "--recipe",
        "lime3d",
        "--model",
        model_spec,
        "--db",
        str(db),
        *TINY[:-1],
        *GRID,
        "--metrics",
        "deletion,spatial_pointing",
        "--metric-set",
        "deletion.preset=step",
        "--metric-set",
        "deletion.steps=4",
        "--metric-set",
        "deletion.fill_value=[0.4,0.4,0.4]",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("deletion: preset step"))
    assert "steps=4" in line and "unit=patch" in line and "set by the user:" in line and "steps" in line
    store = Store(db, read_only=True)
    try:
        row = aggregate(store, ["lime3d"], ["spatial_pointing"])[0]
        details = [s["details"] for s in store.scores() if s["metric"] == "spatial_pointing"]
    finally:
        store.close()
    # the dataset score is the hit rate over all frames (ECCV-W), computed here by hand
    hits = sum(d["hits"] for d in details)
    frames = sum(d["n_frames"] for d in details)
    assert row["spatial_pointing"]["pooling"] == "frames"
    assert row["spatial_pointing"]["mean"] == pytest.approx(hits / frames)
    assert row["spatial_pointing"]["mean"] == pytest.approx(pooled_hit_rate(details, "frames"))


class _FakeStore:
    """Scores of 3 videos x (random, a, b) for one AUC metric (higher is better)."""

    def __init__(self, values: dict[str, list[float]]) -> None:
        self._rows = [
            {
                "method": m,
                "metric": "ins",
                "dataset": "d",
                "item": str(i),
                "value": v,
                "details": {"curve": [], "higher_is_better": True},
            }
            for m, vs in values.items()
            for i, v in enumerate(vs)
        ]

    def scores(self) -> list[dict]:
        return self._rows


def test_alpha_ranks_the_random_maps_with_the_methods() -> None:
    from removalx.metrics import reliability_alpha

    values = {"random": [0.1, 0.2, 0.15], "a": [0.5, 0.6, 0.55], "b": [0.3, 0.1, 0.4]}
    got = alpha_table(_FakeStore(values), ["a", "b"], ["ins"])["ins"]  # type: ignore[arg-type]
    a = [[values[m][i] for m in ("random", "a", "b")] for i in range(3)]
    assert got == pytest.approx(reliability_alpha(a, values["random"], higher_is_better=True))
