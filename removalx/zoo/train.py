"""Train a zoo model on freshly generated synthetic clips and save its weights + metadata.

Usage::

    python -m removalx.zoo.train r3d_tiny [--seed 0] [--n-train 2000] [--epochs 8] [--out-dir DIR]
    python -m removalx.zoo.train r3d_tiny_ls      # label smoothing 0.3: top-1 p about 0.77, not 1

Training clips use seeds ``seed * 10**6 + [0, n_train)``, validation clips use the disjoint
range ``seed * 10**6 + 500_000 + [0, n_val)``. Clips are rendered at 16x112x112 (the demo
size) and resized to the model's native input size exactly as the model itself would, so the
model sees the same pixels at training time and when it is later given 112x112 clips.

The ``*_ls`` models are trained with label smoothing ``eps`` (the cross-entropy target puts
``1 - eps + eps / K`` on the true class and ``eps / K`` on each other class), so that their
top-1 probability settles near :func:`smoothing_optimum` instead of 1 (see ``docs/zoo.md``).
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

from removalx.core.progress import tqdm
from removalx.errors import ConfigError
from removalx.files.atomic import atomic_write, storage_errors
from removalx.zoo.confidence import predict_probs, summarize
from removalx.zoo.data import CLASS_NAMES, make_dataset
from removalx.zoo.models import MEAN, NATIVE_SIZE, STD, WEIGHTS_DIR, ZOO, build_model, count_params

__all__ = [
    "DEFAULTS",
    "VAL_SEED_OFFSET",
    "evaluate",
    "fit_model",
    "main",
    "native_clips",
    "smoothing_optimum",
    "train",
]

#: Offset of the validation seed range inside a training seed block.
VAL_SEED_OFFSET = 500_000
_RENDER = (16, 112)  # (frames, size) the clips are rendered at before resizing

#: Label smoothing of the ``*_ls`` models: the loss optimum is p(true) = 1 - 0.3 + 0.3 / 4 = 0.775.
LS_EPSILON = 0.3

#: Per-model training defaults (learning rate, epochs, batch size, label smoothing).
DEFAULTS: dict[str, dict[str, Any]] = {
    "r3d_tiny": {"lr": 3e-3, "epochs": 8, "batch_size": 16, "label_smoothing": 0.0},
    "cnn_gru": {"lr": 3e-3, "epochs": 10, "batch_size": 16, "label_smoothing": 0.0},
    "timesformer_tiny": {"lr": 1e-3, "epochs": 12, "batch_size": 16, "label_smoothing": 0.0},
    "r3d_tiny_ls": {"lr": 3e-3, "epochs": 6, "batch_size": 16, "label_smoothing": LS_EPSILON},
    "cnn_gru_ls": {"lr": 3e-3, "epochs": 8, "batch_size": 16, "label_smoothing": LS_EPSILON},
    "cnn_lstm_ls": {"lr": 3e-3, "epochs": 6, "batch_size": 16, "label_smoothing": LS_EPSILON},
    "timesformer_tiny_ls": {"lr": 1e-3, "epochs": 10, "batch_size": 16, "label_smoothing": LS_EPSILON},
}


def smoothing_optimum(epsilon: float, num_classes: int) -> float:
    """Probability of the true class that minimises cross-entropy with label smoothing.

    The smoothed target is ``q = (1 - epsilon) * onehot + epsilon / K``; cross-entropy
    ``-sum_k q_k log p_k`` over the simplex is smallest at ``p = q``, so
    ``p_true = 1 - epsilon + epsilon / K`` (and ``epsilon / K`` for every other class).

    Parameters
    ----------
    epsilon : float
        Label smoothing in [0, 1).
    num_classes : int
        Number of classes ``K``.

    Returns
    -------
    float
        ``1 - epsilon + epsilon / num_classes``.
    """
    return 1.0 - epsilon + epsilon / num_classes


def _to_bcthw(videos: torch.Tensor) -> torch.Tensor:
    """``[N, T, H, W, 3]`` (uint8 or float) -> ``float32[N, 3, T, H, W]`` in [0, 1]."""
    x = videos.permute(0, 4, 1, 2, 3).float()
    return x / 255.0 if videos.dtype == torch.uint8 else x


def native_clips(videos: torch.Tensor) -> torch.Tensor:
    """Clips ``[N, T, H, W, 3]`` (uint8, or float in [0, 1]) as the zoo models train on them.

    Resized (trilinear) to :data:`NATIVE_SIZE` exactly as a zoo model resizes its input,
    returned as ``uint8[N, 3, T', H', W']``.
    """
    x = F.interpolate(_to_bcthw(videos), size=NATIVE_SIZE, mode="trilinear", align_corners=False)
    return (x * 255.0).round().clamp(0, 255).to(torch.uint8)


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
        out[start : start + m] = native_clips(v)
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


def fit_model(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    lr: float,
    epochs: int,
    batch_size: int,
    label_smoothing: float,
    seed: int,
    progress: bool,
) -> None:
    """Train ``model`` on uint8 BCTHW clips ``x`` with labels ``y`` (in place).

    AdamW + one-cycle schedule with (smoothed) cross-entropy; horizontal flips swap the
    labels left and right. Deterministic for a given ``seed``.
    """
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
            loss = F.cross_entropy(model(xb), yb, label_smoothing=label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()


def _train_settings(name: str, n_train: int, n_val: int, overrides: dict[str, Any]) -> dict[str, Any]:
    """The model's :data:`DEFAULTS` with the given ``overrides``; refuse bad names, sizes, smoothing."""
    if name not in ZOO:
        raise ConfigError(f"unknown zoo model {name!r}.", f"Use one of: {', '.join(sorted(ZOO))}.")
    if n_train < 1 or n_val < 1:
        raise ConfigError(
            f"n_train and n_val must be >= 1, got {n_train}, {n_val}.", "Use e.g. 2000 and 400."
        )
    cfg = {**DEFAULTS[name]}
    cfg.update({k: v for k, v in overrides.items() if v is not None})
    if not 0.0 <= float(cfg["label_smoothing"]) < 1.0:
        raise ConfigError(
            f"label_smoothing must be in [0, 1), got {str(cfg['label_smoothing'])[:40]}.",
            f"Use 0 (plain cross-entropy) or e.g. {LS_EPSILON}.",
        )
    return cfg


def _model_meta(
    name: str,
    model: nn.Module,
    cfg: dict[str, Any],
    val_conf: dict[str, Any],
    *,
    seed: int,
    n_train: int,
    n_val: int,
    two_part_fraction: float,
    t_data: float,
    t_fit: float,
) -> dict[str, Any]:
    """The metadata of a trained zoo model (``<name>.json``)."""
    base = seed * 1_000_000
    return {
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
        "label_smoothing": cfg["label_smoothing"],
        "label_smoothing_optimum_p": round(smoothing_optimum(cfg["label_smoothing"], len(CLASS_NAMES)), 4),
        "val_accuracy": val_conf["accuracy"],
        "val_confidence": val_conf,
        "data_seconds": round(t_data, 1),
        "train_seconds": round(t_fit, 1),
        "torch_threads": torch.get_num_threads(),
        "torch_version": torch.__version__,
    }


def save_model(out: Path, name: str, model: nn.Module, meta: dict[str, Any], what: str = "zoo model") -> None:
    """Write ``<name>.pt`` and ``<name>.json`` to ``out`` (each replaced whole or left as it was)."""
    for path, write in (
        (out / f"{name}.pt", lambda fh: torch.save(model.state_dict(), fh)),
        (out / f"{name}.json", lambda fh: fh.write((json.dumps(meta, indent=2) + "\n").encode())),
    ):
        with storage_errors(path, f"{what} {name!r} file"), atomic_write(path, "wb") as fh:
            write(fh)


def train(
    name: str,
    *,
    seed: int = 0,
    n_train: int = 2000,
    n_val: int = 400,
    epochs: int | None = None,
    lr: float | None = None,
    batch_size: int | None = None,
    label_smoothing: float | None = None,
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
    epochs, lr, batch_size, label_smoothing : optional
        Override the per-model :data:`DEFAULTS` (``label_smoothing`` in [0, 1)).
    two_part_fraction : float, default 0.2
        Fraction of training clips whose target is visible in only one half of the clip.
    out_dir : str or Path, optional
        Where to write the files (default: the bundled ``removalx/zoo/weights``).
    progress : bool, default True
        Show tqdm progress bars.

    Returns
    -------
    dict
        The metadata written to ``<name>.json``: the training settings, ``val_accuracy`` and
        ``val_confidence`` (:func:`removalx.zoo.confidence.summarize` on the validation clips:
        accuracy, mean and quantiles of the top-1 probability).

    Raises
    ------
    ConfigError
        If ``name`` is unknown, the sizes are not positive or ``label_smoothing`` is not in [0, 1).
    StorageError
        If a file cannot be written (each file is replaced whole or left as it was).
    """
    overrides = {"epochs": epochs, "lr": lr, "batch_size": batch_size, "label_smoothing": label_smoothing}
    cfg = _train_settings(name, n_train, n_val, overrides)
    torch.manual_seed(seed)
    np.random.seed(seed)
    t0 = time.perf_counter()
    base = seed * 1_000_000
    x_train, y_train = _native_data(n_train, base, two_part_fraction, progress, "train data")
    x_val, y_val = _native_data(n_val, base + VAL_SEED_OFFSET, 0.0, progress, "val data")
    t_data = time.perf_counter() - t0
    model = build_model(name, len(CLASS_NAMES), NATIVE_SIZE)
    fit_model(model, x_train, y_train, seed=seed, progress=progress, **cfg)
    t_fit = time.perf_counter() - t0 - t_data
    model.eval()
    val_probs = predict_probs(model, (x_val[i : i + 32] for i in range(0, len(x_val), 32)))
    val_conf = summarize(val_probs, y_val)
    meta = _model_meta(
        name,
        model,
        cfg,
        val_conf,
        seed=seed,
        n_train=n_train,
        n_val=n_val,
        two_part_fraction=two_part_fraction,
        t_data=t_data,
        t_fit=t_fit,
    )
    save_model(Path(out_dir) if out_dir is not None else WEIGHTS_DIR, name, model, meta)
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
    parser.add_argument("--label-smoothing", type=float, default=None, help="default: the model's (0 or 0.3)")
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
        label_smoothing=args.label_smoothing,
        out_dir=args.out_dir,
        progress=not args.no_progress,
    )
    keys = ("name", "params", "val_accuracy", "val_confidence", "train_seconds", "epochs", "label_smoothing")
    print(json.dumps({k: meta[k] for k in keys}))


if __name__ == "__main__":
    main()
