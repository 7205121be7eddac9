"""Tests of the bundled zoo models in :mod:`removalx.zoo.models`."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from removalx.errors import ModelError
from removalx.zoo.data import CLASS_NAMES, make_dataset
from removalx.zoo.models import WEIGHTS_DIR, ZOO, count_params, list_zoo, load_zoo_model

TEST_SEED = 90_000_000  # never used for training (train: seed * 1e6 + [0, n), val: + 500_000)
N_TEST = 200
META_KEYS = {
    "class_names",
    "mean",
    "std",
    "layout",
    "input_size",
    "seed",
    "n_train",
    "n_val",
    "val_accuracy",
    "train_seconds",
    "epochs",
    "torch_version",
}


@pytest.fixture(scope="module")
def held_out() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """200 fresh 16x112x112 clips as BCTHW, with labels and evidence masks."""
    torch.set_num_threads(1)
    videos, labels, evidence = make_dataset(N_TEST, seed=TEST_SEED)
    return videos.permute(0, 4, 1, 2, 3).contiguous(), labels, evidence


@torch.no_grad()
def _probs(model: torch.nn.Module, x: torch.Tensor, batch: int = 25) -> torch.Tensor:
    return torch.cat([model(x[i : i + batch]).softmax(-1) for i in range(0, len(x), batch)])


@pytest.mark.parametrize("name", sorted(ZOO))
def test_model_loads_with_metadata(name: str) -> None:
    model, meta = load_zoo_model(name)
    assert not model.training
    assert set(meta) >= META_KEYS
    assert meta["class_names"] == CLASS_NAMES
    assert meta["layout"] == "BCTHW"
    assert count_params(model) < 300_000
    assert (WEIGHTS_DIR / f"{name}.pt").stat().st_size < 2_000_000
    out = model(torch.rand(2, 3, 16, 112, 112))
    assert out.shape == (2, len(CLASS_NAMES)) and bool(torch.isfinite(out).all())
    assert model(torch.rand(1, 3, 8, 64, 48)).shape == (1, len(CLASS_NAMES))  # any size is resized


@pytest.mark.parametrize("name", sorted(ZOO))
def test_model_accuracy_on_fresh_held_out_clips(name: str, held_out) -> None:
    x, y, _ = held_out
    model, meta = load_zoo_model(name)
    acc = float((_probs(model, x).argmax(1) == y).float().mean())
    print(
        f"\n{name}: held-out accuracy {acc:.3f} on {N_TEST} clips (val_accuracy in metadata {meta['val_accuracy']})"
    )
    assert acc >= 0.95


def _background_mask(evidence: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """The evidence mask rolled in space so it covers (almost) only non-evidence pixels; same pixel count."""
    size = evidence.shape[-1]
    best, best_overlap = evidence, None
    for _ in range(20):
        dy, dx = (int(v) for v in rng.integers(size // 4, 3 * size // 4, size=2))
        moved = torch.roll(evidence, shifts=(dy, dx), dims=(-2, -1))
        overlap = int((moved & evidence).sum())
        if best_overlap is None or overlap < best_overlap:
            best, best_overlap = moved, overlap
        if overlap == 0:
            break
    return best


def test_occluding_evidence_hurts_much_more_than_occluding_background(held_out) -> None:
    x, y, evidence = held_out
    n = 48
    x, y, evidence = x[:n], y[:n], evidence[:n]
    model, _ = load_zoo_model("r3d_tiny")
    rng = np.random.default_rng(0)
    bg = torch.stack([_background_mask(e, rng) for e in evidence])
    assert torch.equal(bg.sum(dim=(1, 2, 3)), evidence.sum(dim=(1, 2, 3)))
    occ_ev = x.masked_fill(evidence[:, None], 0.0)
    occ_bg = x.masked_fill(bg[:, None], 0.0)
    idx = torch.arange(n)
    p_clean = _probs(model, x)[idx, y]
    p_ev = _probs(model, occ_ev)[idx, y]
    p_bg = _probs(model, occ_bg)[idx, y]
    drop_ev = float((p_clean - p_ev).mean())
    drop_bg = float((p_clean - p_bg).mean())
    acc_ev = float((_probs(model, occ_ev).argmax(1) == y).float().mean())
    acc_bg = float((_probs(model, occ_bg).argmax(1) == y).float().mean())
    print(
        f"\nr3d_tiny occlusion over {n} clips: clean p(target)={float(p_clean.mean()):.3f}; "
        f"evidence occluded: drop={drop_ev:.3f} acc={acc_ev:.2f}; "
        f"same-size background occluded: drop={drop_bg:.3f} acc={acc_bg:.2f}"
    )
    assert drop_ev > 0.4
    assert drop_ev > 5 * max(drop_bg, 0.01)


def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(ModelError, match="r3d_tiny") as info:
        load_zoo_model("resnet_huge")
    assert all(name in str(info.value) for name in ZOO)


def test_missing_weights_say_how_to_train(tmp_path) -> None:
    with pytest.raises(ModelError, match=r"python -m removalx\.zoo\.train cnn_gru"):
        load_zoo_model("cnn_gru", weights_dir=tmp_path)
    shutil.copy(WEIGHTS_DIR / "cnn_gru.json", tmp_path / "r3d_tiny.json")  # metadata without weights
    with pytest.raises(ModelError, match="train r3d_tiny"):
        load_zoo_model("r3d_tiny", weights_dir=tmp_path)


def test_list_zoo() -> None:
    rows = list_zoo()
    assert [r["name"] for r in rows] == list(ZOO)
    for row in rows:
        assert row["params"] < 300_000
        assert row["val_accuracy"] is not None and row["val_accuracy"] >= 0.95
