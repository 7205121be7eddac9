"""Train a zoo model on freshly generated synthetic clips and save its weights + metadata.

Usage::

    python -m removalx.zoo.train r3d_tiny [--seed 0] [--n-train 2000] [--epochs 8] [--out-dir DIR]

Training clips use seeds ``seed * 10**6 + [0, n_train)``, validation clips use the disjoint
range ``seed * 10**6 + 500_000 + [0, n_val)``. Clips are rendered at 16x112x112 (the demo
size) and resized to the model's native input size exactly as the model itself would, so the
model sees the same pixels at training time and when it is later given 112x112 clips.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from removalx.errors import ConfigError
from removalx.zoo.data import CLASS_NAMES, make_dataset
from removalx.zoo.models import MEAN, NATIVE_SIZE, STD, WEIGHTS_DIR, ZOO, build_model, count_params

__all__ = ["DEFAULTS", "VAL_SEED_OFFSET", "evaluate", "main", "train"]

#: Offset of the validation seed range inside a training seed block.
VAL_SEED_OFFSET = 500_000
_RENDER = (16, 112)  # (frames, size) the clips are rendered at before resizing

#: Per-model training defaults (learning rate, epochs, batch size, two-part clip fraction).
DEFAULTS: dict[str, dict[str, Any]] = {
    "r3d_tiny": {"lr": 3e-3, "epochs": 8, "batch_size": 16},
    "cnn_gru": {"lr": 3e-3, "epochs": 10, "batch_size": 16},
    "timesformer_tiny": {"lr": 1e-3, "epochs": 12, "batch_size": 16},
}


def _to_bcthw(videos: torch.Tensor) -> torch.Tensor:
    """``[N, T, H, W, 3]`` (uint8 or float) -> ``float32[N, 3, T, H, W]`` in [0, 1]."""
    x = videos.permute(0, 4, 1, 2, 3).float()
    return x / 255.0 if videos.dtype == torch.uint8 else x


def _native_data(n: int, seed: int, two_part_fraction: float, progress: bool, desc: str) -> tuple:
    """Render ``n`` clips at 16x112x112 and resize them to :data:`NATIVE_SIZE` (uint8, BCTHW)."""
    chunk = 100
    out = torch.empty((n, 3, *NATIVE_SIZE), dtype=torch.uint8)
    labels = torch.empty(n, dtype=torch.long)
    for start in tqdm(range(0, n, chunk), desc=desc, disable=not progress, leave=False):
        m = min(chunk, n - start)
        v, y, _ = make_dataset(
            m, seed + start, frames=_RENDER[0], size=_RENDER[1], two_part_fraction=two_part_fraction
        )
        x = F.interpolate(_to_bcthw(v), size=NATIVE_SIZE, mode="trilinear", align_corners=False)
        out[start : start + m] = (x * 255.0).round().clamp(0, 255).to(torch.uint8)
        labels[start : start + m] = y
    return out, labels


@torch.no_grad()
def evaluate(model: nn.Module, videos: torch.Tensor, labels: torch.Tensor, batch_size: int = 32) -> float:
    """Accuracy of ``model`` on ``videos`` (``[N, 3, T, H, W]``, uint8 or float in [0, 1]).

    Parameters
    ----------
    model : torch.nn.Module
        A zoo model (BCTHW in, logits out).
    videos : torch.Tensor
        Clips in BCTHW layout.
    labels : torch.Tensor
        ``int64[N]``.
    batch_size : int, default 32
        Evaluation batch size.

    Returns
    -------
    float
        Fraction of correctly classified clips.
    """
    was_training = model.training
    model.eval()
    correct = 0
    for i in range(0, len(videos), batch_size):
        x = videos[i : i + batch_size]
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
        correct += int((model(x).argmax(1) == labels[i : i + batch_size]).sum())
    model.train(was_training)
    return correct / len(videos)


def _fit(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    lr: float,
    epochs: int,
    batch_size: int,
    seed: int,
    progress: bool,
) -> None:
    """AdamW + one-cycle schedule with cross-entropy; random horizontal flips swap left/right."""
    gen = torch.Generator().manual_seed(seed)
    steps = epochs * math.ceil(len(x) / batch_size)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    flip_label = torch.tensor([1, 0, 2, 3])  # horizontal flip: left <-> right
    model.train()
    bar = tqdm(total=steps, desc="train", disable=not progress)
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), batch_size):
            idx = order[i : i + batch_size]
            xb, yb = x[idx].float() / 255.0, y[idx]
            flip = torch.rand(len(idx), generator=gen) < 0.5
            xb[flip] = xb[flip].flip(-1)
            yb = torch.where(flip, flip_label[yb], yb)
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()


def train(
    name: str,
    *,
    seed: int = 0,
    n_train: int = 2000,
    n_val: int = 400,
    epochs: int | None = None,
    lr: float | None = None,
    batch_size: int | None = None,
    two_part_fraction: float = 0.2,
    out_dir: str | Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train zoo model ``name`` on synthetic clips; save ``<name>.pt`` and ``<name>.json``.

    Parameters
    ----------
    name : str
        A key of :data:`removalx.zoo.models.ZOO`.
    seed : int, default 0
        Seed of model initialisation, data order and the data seed block.
    n_train, n_val : int
        Numbers of training and held-out validation clips.
    epochs, lr, batch_size : optional
        Override the per-model :data:`DEFAULTS`.
    two_part_fraction : float, default 0.2
        Fraction of training clips whose target is visible in only one half of the clip.
    out_dir : str or Path, optional
        Where to write the files (default: the bundled ``removalx/zoo/weights``).
    progress : bool, default True
        Show tqdm progress bars.

    Returns
    -------
    dict
        The metadata written to ``<name>.json``.

    Raises
    ------
    ConfigError
        If ``name`` is unknown or the sizes are not positive.
    """
    if name not in ZOO:
        raise ConfigError(f"unknown zoo model {name!r}.", f"Use one of: {', '.join(sorted(ZOO))}.")
    if n_train < 1 or n_val < 1:
        raise ConfigError(
            f"n_train and n_val must be >= 1, got {n_train}, {n_val}.", "Use e.g. 2000 and 400."
        )
    cfg = {**DEFAULTS[name]}
    cfg.update(
        {k: v for k, v in {"epochs": epochs, "lr": lr, "batch_size": batch_size}.items() if v is not None}
    )
    torch.manual_seed(seed)
    np.random.seed(seed)
    t0 = time.perf_counter()
    base = seed * 1_000_000
    x_train, y_train = _native_data(n_train, base, two_part_fraction, progress, "train data")
    x_val, y_val = _native_data(n_val, base + VAL_SEED_OFFSET, 0.0, progress, "val data")
    t_data = time.perf_counter() - t0
    model = build_model(name, len(CLASS_NAMES), NATIVE_SIZE)
    _fit(model, x_train, y_train, seed=seed, progress=progress, **cfg)
    t_fit = time.perf_counter() - t0 - t_data
    model.eval()
    meta = {
        "name": name,
        "architecture": type(model).__name__,
        "description": ZOO[name][1],
        "class_names": list(CLASS_NAMES),
        "mean": list(MEAN),
        "std": list(STD),
        "normalization": "applied inside the model; feed raw [0, 1] clips",
        "layout": "BCTHW",
        "input_size": list(NATIVE_SIZE),
        "accepts_any_size": True,
        "render_size": list(_RENDER),
        "params": count_params(model),
        "seed": seed,
        "train_seeds": [base, base + n_train],
        "val_seeds": [base + VAL_SEED_OFFSET, base + VAL_SEED_OFFSET + n_val],
        "n_train": n_train,
        "n_val": n_val,
        "two_part_fraction": two_part_fraction,
        "epochs": cfg["epochs"],
        "lr": cfg["lr"],
        "batch_size": cfg["batch_size"],
        "val_accuracy": round(evaluate(model, x_val, y_val), 4),
        "data_seconds": round(t_data, 1),
        "train_seconds": round(t_fit, 1),
        "torch_threads": torch.get_num_threads(),
        "torch_version": torch.__version__,
    }
    out = Path(out_dir) if out_dir is not None else WEIGHTS_DIR
    out.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), out / f"{name}.pt")
    (out / f"{name}.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m removalx.zoo.train", description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=sorted(ZOO))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-train", type=int, default=2000)
    parser.add_argument("--n-val", type=int, default=400)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--out-dir", default=None)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    meta = train(
        args.name,
        seed=args.seed,
        n_train=args.n_train,
        n_val=args.n_val,
        epochs=args.epochs,
        lr=args.lr,
        out_dir=args.out_dir,
        progress=not args.no_progress,
    )
    print(json.dumps({k: meta[k] for k in ("name", "params", "val_accuracy", "train_seconds", "epochs")}))


if __name__ == "__main__":
    main()
