"""Every shipped benchmark model relies on its ground truth: interventions on fresh held-out clips.

The clips come from a seed block no model was trained, validated or verified on, and the
interventions are re-implemented here (painting with the neutral gray) rather than taken from
``removalx.zoo.bench.interventions``.
"""

from __future__ import annotations

import json

import pytest
import torch

from removalx.zoo.bench.registry import BENCH_MODELS, BENCH_WEIGHTS_DIR, SHIPPED
from removalx.zoo.bench.render import NEUTRAL_FILL
from removalx.zoo.bench.tasks import generate
from removalx.zoo.models import list_zoo, load_zoo_model

N_CLIPS = 200  # held-out clips per model, balanced (100 per class)
SEED = 424_242_000  # far from every seed used in training (seed * 10**6 + small offsets)
_CLIPS: dict[str, object] = {}


def _clips(task: str):  # type: ignore[no-untyped-def]
    if task not in _CLIPS:
        _CLIPS[task] = generate(task, N_CLIPS, SEED)
    return _CLIPS[task]


@torch.inference_mode()
def _acc(model: torch.nn.Module, video: torch.Tensor, labels: torch.Tensor) -> float:
    preds = torch.cat([model(video[i : i + 80].float() / 255.0).argmax(1) for i in range(0, len(video), 80)])
    return float((preds == labels).float().mean())


def _removed(video: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    return torch.where(region[:, None], torch.full_like(video, NEUTRAL_FILL), video)


def _union(batch, parts):  # type: ignore[no-untyped-def]
    out = torch.zeros_like(batch.parts[parts[0]])
    for p in parts:
        out = out | batch.parts[p]
    return out


def test_the_3d_cnns_of_every_task_are_shipped() -> None:
    families = {m.family for m in BENCH_MODELS.values()}
    assert {f"bench_{f}_r3d" for f in families} <= set(SHIPPED)
    for name in SHIPPED:
        assert (BENCH_WEIGHTS_DIR / f"{name}.pt").stat().st_size < 400_000
        meta = json.loads((BENCH_WEIGHTS_DIR / f"{name}.json").read_text())
        assert meta["interventions"]["passed"] is True and meta["interventions"]["n"] >= 200
        assert meta["params"] < 100_000 and meta["val_accuracy"] >= 0.95
    rows = {r["name"]: r for r in list_zoo(bench=True)}
    assert all(rows[name]["trained"] for name in SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_interventions_define_the_ground_truth(name: str) -> None:
    spec = BENCH_MODELS[name]
    model, meta = load_zoo_model(name)
    b = _clips(spec.eval_task)
    clean = _acc(model, b.video, b.labels)
    chance = 1.0 / len(meta["class_names"])
    assert clean >= 0.95, clean
    gt = _union(b, spec.ground_truth)
    results = {
        "remove_gt": _acc(model, _removed(b.video, gt), b.labels),
        "keep_gt": _acc(model, _removed(b.video, ~gt), b.labels),
    }
    for part in b.parts:  # (a one-part ground truth was measured above)
        same = spec.ground_truth == (part,)
        results[f"remove_{part}"] = (
            results["remove_gt"] if same else _acc(model, _removed(b.video, b.parts[part]), b.labels)
        )
    print(f"\n{name}: clean {clean:.3f} " + " ".join(f"{k} {v:.3f}" for k, v in results.items()))
    assert results["keep_gt"] >= 0.9 * clean
    if spec.family == "or":  # either part suffices; both removed -> chance
        assert results["remove_part_a"] >= 0.9 * clean and results["remove_part_b"] >= 0.9 * clean
        assert abs(results["remove_gt"] - chance) <= 0.10
    elif spec.family == "shortcut_twin":  # ignores the patch, uses the evidence
        assert abs(results["remove_patch"] - clean) <= 0.05
        assert abs(results["remove_gt"] - chance) <= 0.10
    else:  # every ground-truth part is needed: removing any one of them -> chance
        assert abs(results["remove_gt"] - chance) <= 0.10
        for part in spec.ground_truth:
            assert abs(results[f"remove_{part}"] - chance) <= 0.10, part
    for part in set(b.parts) - set(spec.ground_truth):  # parts outside the ground truth do not matter
        if spec.family != "or":
            assert results[f"remove_{part}"] >= 0.9 * clean, part


def test_a_model_that_fails_its_interventions_is_not_saved(tmp_path) -> None:
    """One epoch on 16 clips leaves the model near chance: verified, refused, saved only on request."""
    from removalx.errors import ConfigError
    from removalx.zoo.bench.train import train_bench

    meta = train_bench("bench_and_r3d", n_train=16, n_val=8, epochs=1, out_dir=tmp_path)
    assert meta["interventions"]["passed"] is False and meta["interventions"]["n"] >= 200
    assert not list(tmp_path.iterdir())
    meta = train_bench("bench_and_r3d", n_train=16, n_val=8, epochs=1, out_dir=tmp_path, save_failed=True)
    assert {p.name for p in tmp_path.iterdir()} == {"bench_and_r3d.pt", "bench_and_r3d.json"}
    assert set(meta) >= {"params", "val_accuracy", "train_seconds", "interventions", "seed", "epochs"}
    with pytest.raises(ConfigError, match="unknown benchmark model"):
        train_bench("bench_nope")
