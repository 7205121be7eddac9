"""How sure a zoo model is on held-out synthetic clips: accuracy and top-1 probability quantiles.

Usage::

    python -m removalx.zoo.confidence r3d_tiny_ls [cnn_gru_ls ...] [--n 400] [--seed 91000000]

Clip ``i`` is :func:`removalx.zoo.data.make_clip` with label ``i % 4`` and seed ``seed + i``
(the ``zoo:synthetic`` dataset of ``removalx evaluate``), rendered at 16x112x112 and given to the
model as it is (the model resizes it). The default seeds are used neither for training
(``seed * 10**6 + [0, n_train)``) nor for validation (``+ 500_000``).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from removalx.errors import ConfigError

__all__ = ["CONFIDENCE_SEED", "QUANTILES", "main", "measure", "predict_probs", "summarize"]

#: First seed of the default held-out clips (disjoint from every training and validation range).
CONFIDENCE_SEED = 91_000_000
#: Quantiles of the top-1 probability reported by :func:`summarize` (key -> level).
QUANTILES: dict[str, float] = {"q05": 0.05, "q25": 0.25, "median": 0.5, "q75": 0.75, "q95": 0.95}


@torch.no_grad()
def predict_probs(model: nn.Module, videos: Iterable[torch.Tensor]) -> torch.Tensor:
    """Softmax probabilities of ``model`` on batches of clips.

    Parameters
    ----------
    model : torch.nn.Module
        A zoo model (BCTHW in, logits out); it is evaluated in eval mode and its mode restored.
    videos : iterable of torch.Tensor
        Batches ``[B, 3, T, H, W]``, ``uint8`` in [0, 255] or float in [0, 1].

    Returns
    -------
    torch.Tensor
        ``float32[N, K]``, rows summing to 1.
    """
    was_training = model.training
    model.eval()
    out = []
    for x in videos:
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
        out.append(model(x).float().softmax(-1))
    model.train(was_training)
    return torch.cat(out)


def summarize(probs: torch.Tensor, labels: torch.Tensor) -> dict[str, Any]:
    """Accuracy and the distribution of the top-1 probability.

    Parameters
    ----------
    probs : torch.Tensor
        ``float[N, K]`` softmax outputs.
    labels : torch.Tensor
        ``int64[N]`` true classes.

    Returns
    -------
    dict
        ``n``, ``accuracy``, ``top1_prob`` (``mean`` and the :data:`QUANTILES` of
        ``max_k p_k`` over the clips, linear interpolation as :func:`numpy.quantile`) and
        ``true_prob_median`` (median probability of the true class), rounded to 4 decimals.
    """
    p = probs.detach().double().cpu().numpy()
    y = labels.cpu().numpy()
    top1 = p.max(axis=1)
    stats = {key: round(float(np.quantile(top1, q)), 4) for key, q in QUANTILES.items()}
    stats["mean"] = round(float(top1.mean()), 4)
    return {
        "n": len(y),
        "accuracy": round(float((p.argmax(axis=1) == y).mean()), 4),
        "top1_prob": stats,
        "true_prob_median": round(float(np.median(p[np.arange(len(y)), y])), 4),
    }


def _clip_batches(n: int, seed: int, labels: list[int], batch_size: int) -> Iterable[torch.Tensor]:
    from removalx.zoo.data import make_clip

    for start in range(0, n, batch_size):
        clips = [make_clip(labels[i], seed + i).video for i in range(start, min(n, start + batch_size))]
        yield torch.stack(clips).permute(0, 4, 1, 2, 3)


def measure(
    name: str, *, n: int = 400, seed: int = CONFIDENCE_SEED, weights_dir: str | Path | None = None
) -> dict[str, Any]:
    """:func:`summarize` zoo model ``name`` on ``n`` fresh 16x112x112 clips.

    Parameters
    ----------
    name : str
        A zoo model name (see :data:`removalx.zoo.models.ZOO`).
    n : int, default 400
        Number of clips; clip ``i`` has label ``i % 4`` and seed ``seed + i``.
    seed : int, default CONFIDENCE_SEED
        First seed.
    weights_dir : str or Path, optional
        Folder with ``<name>.pt`` and ``<name>.json`` (default: the bundled weights).

    Returns
    -------
    dict
        ``name``, ``seeds`` (``[first, last + 1]``) and the :func:`summarize` fields.

    Raises
    ------
    ConfigError
        If ``n < 1``.
    ModelError
        If the model is unknown or its files are missing or damaged.
    """
    from removalx.zoo.data import CLASS_NAMES
    from removalx.zoo.models import load_zoo_model

    if n < 1:
        raise ConfigError(f"n must be >= 1, got {n}.", "Measure at least one clip, e.g. --n 400.")
    model, _ = load_zoo_model(name, weights_dir=weights_dir)
    labels = [i % len(CLASS_NAMES) for i in range(n)]
    probs = predict_probs(model, _clip_batches(n, seed, labels, batch_size=25))
    return {"name": name, "seeds": [seed, seed + n], **summarize(probs, torch.tensor(labels))}


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point (see the module docstring): one JSON line per model."""
    from removalx.zoo.models import ZOO

    parser = argparse.ArgumentParser(
        prog="python -m removalx.zoo.confidence", description=__doc__.splitlines()[0]
    )
    parser.add_argument("names", nargs="+", choices=list(ZOO), metavar="NAME", help=", ".join(ZOO))
    parser.add_argument("--n", type=int, default=400, help="number of clips (default 400)")
    parser.add_argument(
        "--seed", type=int, default=CONFIDENCE_SEED, help=f"first seed (default {CONFIDENCE_SEED})"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error(f"--n must be >= 1, got {args.n}")
    torch.set_num_threads(args.threads)
    for name in args.names:
        print(json.dumps(measure(name, n=args.n, seed=args.seed)), flush=True)


if __name__ == "__main__":
    main()
