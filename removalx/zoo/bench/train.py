"""Train a benchmark model, verify it by interventions on held-out clips, save it if it passes.

Usage::

    python -m removalx.zoo.bench.train bench_motion_r3d [--seed 0] [--out-dir DIR]
    python -m removalx.zoo.bench.train bench_motion_r3d --verify   # re-check the saved model
    removalx zoo train bench_motion_r3d

Clips are drawn as for the other zoo models: training seeds ``seed * 10**6 + k``, validation
seeds ``seed * 10**6 + 500_000 + k`` and verification seeds ``seed * 10**6 + 900_000 + k``
(``k`` = chunk index of 250 clips). Training uses label smoothing 0.3 (like the ``*_ls``
models: not saturated) with AdamW and a one-cycle schedule, no augmentation. The weights
(``<name>.pt``, a plain state_dict) and metadata (``<name>.json``: params, val accuracy,
train time, intervention numbers) are written only when every required intervention passes
(or with ``save_failed=True``).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from removalx.errors import ConfigError
from removalx.files.atomic import atomic_write, storage_errors
from removalx.zoo.bench.interventions import run_checks
from removalx.zoo.bench.registry import ARCHS, BENCH_MODELS, BENCH_WEIGHTS_DIR, FAMILY_TRAINING
from removalx.zoo.bench.render import CLIP_SIZE, NEUTRAL_FILL
from removalx.zoo.bench.tasks import generate, get_task
from removalx.zoo.confidence import predict_probs, summarize
from removalx.zoo.models import MEAN, STD, count_params
from removalx.zoo.train import save_model

__all__ = [
    "LABEL_SMOOTHING",
    "N_VERIFY",
    "VAL_OFFSET",
    "VERIFY_OFFSET",
    "fit",
    "main",
    "train_bench",
    "verify_bench",
]

LABEL_SMOOTHING = 0.3
VAL_OFFSET = 500_000
VERIFY_OFFSET = 900_000
#: Held-out clips the interventions are measured on at training time.
N_VERIFY = 400


def fit(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    lr: float,
    epochs: int,
    batch_size: int,
    seed: int,
) -> None:
    """Train ``model`` on uint8 BCTHW clips ``x`` with labels ``y`` in place (deterministic in ``seed``)."""
    gen = torch.Generator().manual_seed(seed)
    steps = epochs * math.ceil(len(x) / batch_size)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), batch_size):
            idx = order[i : i + batch_size]
            loss = F.cross_entropy(model(x[idx].float() / 255.0), y[idx], label_smoothing=LABEL_SMOOTHING)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    model.eval()


def _settings(name: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """Architecture defaults, then the family's (:data:`FAMILY_TRAINING`), then ``overrides``."""
    if name not in BENCH_MODELS:
        raise ConfigError(
            f"unknown benchmark model {name[:80]!r}.", f"Use one of: {', '.join(sorted(BENCH_MODELS))}."
        )
    spec = BENCH_MODELS[name]
    cfg: dict[str, Any] = {"batch_size": 32, "n_train": 2000, **ARCHS[spec.arch][1]}
    cfg.update(FAMILY_TRAINING.get(spec.family, {}))
    cfg.update({k: v for k, v in overrides.items() if v is not None})
    if int(cfg["n_train"]) < 1 or int(cfg["epochs"]) < 1:
        raise ConfigError(
            f"n_train and epochs must be >= 1, got {cfg['n_train']} and {cfg['epochs']}.",
            "Use e.g. 2000 and 8.",
        )
    return cfg


def train_bench(
    name: str,
    *,
    seed: int = 0,
    n_train: int | None = None,
    n_val: int = 400,
    epochs: int | None = None,
    lr: float | None = None,
    out_dir: str | Path | None = None,
    save_failed: bool = False,
) -> dict[str, Any]:
    """Train benchmark model ``name``, verify it by its interventions, save it if they pass.

    Parameters
    ----------
    name : str
        A key of :data:`~removalx.zoo.bench.registry.BENCH_MODELS`.
    seed : int, default 0
        Seed of initialisation, data order and the data seed block.
    n_train : int, optional
        Training clips (default: the family's, see :data:`FAMILY_TRAINING`, else 2000).
    n_val : int, default 400
        Validation clips (``N_VERIFY`` more held-out clips verify the model).
    epochs, lr : optional
        Override the architecture's and family's defaults.
    out_dir : str or Path, optional
        Output folder (default: the bundled ``removalx/zoo/weights/bench``).
    save_failed : bool, default False
        Also write a model whose interventions fail (never into the bundled folder by default).

    Returns
    -------
    dict
        The metadata (``interventions["passed"]`` says whether it was saved).
    """
    cfg = _settings(name, {"epochs": epochs, "lr": lr, "n_train": n_train})
    n_train = int(cfg.pop("n_train"))
    spec = BENCH_MODELS[name]
    task = get_task(spec.train_task)
    torch.manual_seed(seed)
    base = seed * 1_000_000
    t0 = time.perf_counter()
    data = generate(spec.train_task, n_train, base)
    val = generate(spec.train_task, n_val, base + VAL_OFFSET)
    model = ARCHS[spec.arch][0]()
    t1 = time.perf_counter()
    fit(model, data.video, data.labels, seed=seed, **cfg)
    t_fit = time.perf_counter() - t1
    with torch.inference_mode():
        probs = predict_probs(model, (val.video[i : i + 64] for i in range(0, n_val, 64)))
    verify = generate(spec.eval_task, N_VERIFY, base + VERIFY_OFFSET)
    checks = run_checks(model, verify, spec.checks, len(task.class_names), NEUTRAL_FILL)
    meta = {
        "name": name,
        "family": spec.family,
        "architecture": type(model).__name__,
        "arch": spec.arch,
        "description": f"benchmark task {spec.family!r}",
        "train_task": spec.train_task,
        "eval_task": spec.eval_task,
        "ground_truth_parts": list(spec.ground_truth),
        "neutral_fill": NEUTRAL_FILL,
        "class_names": list(task.class_names),
        "mean": list(MEAN),
        "std": list(STD),
        "layout": "BCTHW",
        "input_size": list(CLIP_SIZE),
        "render_size": [CLIP_SIZE[0], CLIP_SIZE[1]],
        "accepts_any_size": True,
        "params": count_params(model),
        "seed": seed,
        "n_train": n_train,
        "n_val": n_val,
        "label_smoothing": LABEL_SMOOTHING,
        **cfg,
        "val_accuracy": round(float((probs.argmax(1) == val.labels).float().mean()), 4),
        "val_confidence": summarize(probs, val.labels),
        "train_seconds": round(t_fit, 1),
        "total_seconds": round(time.perf_counter() - t0, 1),
        "torch_threads": torch.get_num_threads(),
        "torch_version": torch.__version__,
        "interventions": checks,
    }
    if checks["passed"] or save_failed:
        out = Path(out_dir) if out_dir is not None else BENCH_WEIGHTS_DIR
        out.mkdir(parents=True, exist_ok=True)
        save_model(out, name, model, meta, "benchmark model")
    return meta


def verify_bench(
    name: str, *, seed: int = 0, weights_dir: str | Path | None = None, write: bool = True
) -> dict[str, Any]:
    """Re-run the interventions of a saved benchmark model on its verification clips.

    Parameters
    ----------
    name : str
        A key of :data:`~removalx.zoo.bench.registry.BENCH_MODELS` with saved weights.
    seed : int, default 0
        Seed block of the verification clips (``seed * 10**6 + VERIFY_OFFSET``).
    weights_dir : str or Path, optional
        Folder with ``<name>.pt`` and ``<name>.json`` (default: the bundled one).
    write : bool, default True
        Store the result as ``interventions`` in ``<name>.json``.

    Returns
    -------
    dict
        As ``interventions`` of :func:`train_bench`.
    """
    from removalx.zoo.models import load_zoo_model

    _settings(name, {})
    spec = BENCH_MODELS[name]
    wdir = Path(weights_dir) if weights_dir is not None else BENCH_WEIGHTS_DIR
    model, meta = load_zoo_model(name, weights_dir=wdir)
    verify = generate(spec.eval_task, N_VERIFY, seed * 1_000_000 + VERIFY_OFFSET)
    checks = run_checks(model, verify, spec.checks, len(meta["class_names"]), NEUTRAL_FILL)
    if write:
        meta["interventions"] = checks
        path = wdir / f"{name}.json"
        with storage_errors(path, f"benchmark model {name!r} file"), atomic_write(path, "wb") as fh:
            fh.write((json.dumps(meta, indent=2) + "\n").encode())
    return checks


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog="python -m removalx.zoo.bench.train", description=__doc__.splitlines()[0]
    )
    parser.add_argument("names", nargs="+", choices=sorted(BENCH_MODELS), metavar="NAME")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-train", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out-dir", default=None)
    parser.add_argument("--save-failed", action="store_true")
    parser.add_argument("--verify", action="store_true", help="re-check saved models instead of training")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    for name in args.names:
        if args.verify:
            print(
                json.dumps({name: verify_bench(name, seed=args.seed, weights_dir=args.out_dir)}), flush=True
            )
            continue
        meta = train_bench(
            name,
            seed=args.seed,
            n_train=args.n_train,
            epochs=args.epochs,
            lr=args.lr,
            out_dir=args.out_dir,
            save_failed=args.save_failed,
        )
        keys = ("name", "params", "val_accuracy", "train_seconds", "interventions")
        print(json.dumps({k: meta[k] for k in keys}), flush=True)


if __name__ == "__main__":
    main()
