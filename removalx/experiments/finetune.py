"""Fine-tune a video classifier on a data set by K-fold cross-validation (``removalx finetune``).

The removal paper fine-tunes its models before explaining them (Sec. 4.3: initialised with
Kinetics-400 weights, "further trained for 10 epochs ... using K-Cross Validation with K=5").
:func:`finetune` runs that protocol for any model spec (``torchvision:``, ``python:``,
``hf:``) on any data set the experiments read (a folder of labelled clips, ``kinetics:CSV``,
``ucf101:LIST``): the model's head is swapped for one with the data set's classes; for each
fold the model starts from the same initial weights, trains ``epochs`` epochs on the other
folds and is scored on the held-out fold after every epoch; the report is each fold's final
accuracy, their mean and a bootstrap interval. The paper is silent on the optimiser; the
defaults are those of the authors' released training code (docs/fidelity.md, "Fine-tuning
protocol"). The weights written (``model.pt``) are a state dict plus the metadata
``--weights`` needs (:mod:`removalx.models.finetuned`), loadable without unpickling code.

Resumable: ``OUT/checkpoint.pt`` is replaced after every epoch and ``OUT/finetune.json``
records finished folds; a rerun with the same settings continues where the last one stopped,
one with other settings is refused, naming the difference.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, field_validator

from removalx.core.classifier import VideoClassifier
from removalx.core.progress import tqdm, write_line
from removalx.data.datasets import ItemRef, dataset_refs
from removalx.errors import ConfigError, DatasetError, ModelError, truncate
from removalx.experiments import finetune_loop as loop
from removalx.experiments.stats import bootstrap_ci
from removalx.files.atomic import atomic_write, storage_errors
from removalx.files.torchfile import load_plain
from removalx.models.finetuned import weights_payload
from removalx.models.heads import swap_head
from removalx.models.loading import load_model

__all__ = ["FinetuneConfig", "finetune"]

STATE_FILE = "finetune.json"
CHECKPOINT_FILE = "checkpoint.pt"
WEIGHTS_FILE = "model.pt"


class FinetuneConfig(BaseModel):
    """Settings of the fine-tuning protocol (defaults: the paper, else the authors' code).

    Attributes
    ----------
    epochs : int
        Epochs per fold (paper Sec. 4.3: 10).
    folds : int
        K of K-fold cross-validation (paper Sec. 4.3: 5).
    stratified : bool
        Keep class proportions in every fold (released code: plain shuffled K-fold, False).
    lr, momentum, nesterov, weight_decay : optimiser
        SGD as in the released code (lr 0.005/8 further divided by 8 for one GPU, momentum
        0.9, Nesterov, weight decay 1e-4).
    lr_steps, lr_gamma : schedule
        The learning rate is multiplied by ``lr_gamma`` at each epoch in ``lr_steps``
        (released code: [5, 10], mmcv's default factor 0.1).
    grad_clip : float
        Maximum gradient L2 norm (released code: 40); 0 disables clipping.
    batch_size : int
        Clips per step (released code: 10).
    flip : float
        Probability of a horizontal flip of a training clip (released code: 0.5).
    head_init_std : float
        Standard deviation of the new head's weights (released code's head: 0.02).
    head : str or None
        Dotted path of the layer to replace (default: ``fc``, ``head`` or ``classifier``).
    final : {"all", "best_fold"}
        Weights written: a model trained on all clips after the cross-validation, or the fold
        model with the best held-out accuracy (paper silent: our choice, default "all").
    frames, size : int
        Clips are read as ``frames`` x ``size`` x ``size`` (the model resizes them further).
    n_videos : int or None
        Use only the first ``n_videos`` clips.
    cache_mb : int
        Memory for decoded clips (beyond it clips are decoded again each epoch).
    seed : int
        Drives the fold split, the new head's weights, the data order, flips and dropout.
    """

    model_config = ConfigDict(extra="forbid")

    epochs: StrictInt = Field(default=10, ge=1, le=1000)
    folds: StrictInt = Field(default=5, ge=2, le=100)
    stratified: StrictBool = False
    lr: float = Field(default=0.005 / 64, gt=0.0, le=10.0)
    momentum: float = Field(default=0.9, ge=0.0, lt=1.0)
    nesterov: StrictBool = True
    weight_decay: float = Field(default=1e-4, ge=0.0, le=1.0)
    lr_steps: list[StrictInt] = Field(default_factory=lambda: [5, 10], max_length=100)
    lr_gamma: float = Field(default=0.1, gt=0.0, le=1.0)
    grad_clip: float = Field(default=40.0, ge=0.0, le=1e6)
    batch_size: StrictInt = Field(default=10, ge=1, le=4096)
    flip: float = Field(default=0.5, ge=0.0, le=1.0)
    head_init_std: StrictFloat = Field(default=0.02, gt=0.0, le=1.0)
    head: str | None = Field(default=None, max_length=200)
    final: Literal["all", "best_fold"] = "all"
    frames: StrictInt = Field(default=16, ge=1, le=1024)
    size: StrictInt = Field(default=112, ge=8, le=2048)
    n_videos: StrictInt | None = Field(default=None, ge=2, le=10_000_000)
    cache_mb: StrictInt = Field(default=2048, ge=0, le=1_048_576)
    seed: StrictInt = Field(default=0, ge=0, le=2**32 - 1)

    @field_validator("lr_steps")
    @classmethod
    def _check_steps(cls, v: list[int]) -> list[int]:
        if any(s < 1 or s > 1000 for s in v):
            raise ValueError(f"lr_steps must be epochs in [1, 1000], got {truncate(str(v), 60)}")
        return sorted(v)

    def train_settings(self) -> dict[str, Any]:
        """What one training epoch needs (:func:`removalx.experiments.finetune_loop.train_epoch`)."""
        return {"batch_size": self.batch_size, "flip": self.flip, "grad_clip": self.grad_clip}


# -- data ---------------------------------------------------------------------------------------
def _labelled(spec: str, cfg: FinetuneConfig, data_options: dict[str, Any]) -> tuple[str, list[ItemRef]]:
    key, refs = dataset_refs(
        spec, cfg.n_videos, frames=cfg.frames, size=cfg.size, seed=cfg.seed, **data_options
    )
    unlabelled = [r.item for r in refs if r.label is None]
    if unlabelled:
        raise DatasetError(
            f"{len(unlabelled)} of {len(refs)} clips of {truncate(spec, 120)} have no label "
            f"(e.g. {truncate(unlabelled[0], 80)!r}); fine-tuning needs a label for every clip.",
            "Add labels.csv (file,label rows) to the folder, or use an annotation file "
            "(kinetics:FILE.csv, ucf101:LIST.txt).",
        )
    return key, refs


def _class_names(refs: list[ItemRef], k: int) -> list[str]:
    names = {int(r.label): str(r.source["label_name"]) for r in refs if "label_name" in r.source}  # type: ignore[arg-type]
    if len(names) == k:
        return [names[i] for i in range(k)]
    if refs and str(refs[0].source.get("kind", "")).startswith("zoo:"):
        from removalx.zoo.data import CLASS_NAMES

        return list(CLASS_NAMES)[:k]
    return [f"class_{i}" for i in range(k)]


# -- state and checkpoints ------------------------------------------------------------------------
def _signature(spec: str, weights: str | None, key: str, refs: list[ItemRef], cfg: FinetuneConfig) -> dict:
    items = hashlib.sha256(json.dumps([[r.item, r.label] for r in refs]).encode()).hexdigest()[:16]
    settings = cfg.model_dump(exclude={"cache_mb"})
    return {"model": spec, "weights": weights, "dataset": key, "clips": len(refs), "items": items, **settings}


def _write_json(path: Path, data: dict[str, Any]) -> None:
    with storage_errors(path, "fine-tuning state"), atomic_write(path, "w") as fh:
        fh.write(json.dumps(data, indent=2, default=str) + "\n")


def _save_torch(path: Path, obj: Any, what: str) -> None:
    with storage_errors(path, what), atomic_write(path, "wb") as fh:
        torch.save(obj, fh)


def _load_state(out: Path, signature: dict[str, Any]) -> dict[str, Any]:
    """The state of an earlier run in ``out`` (or a fresh one); refuse other settings."""
    path = out / STATE_FILE
    if not path.is_file():
        return {"signature": signature, "folds": {}, "final": None}
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        old = state["signature"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"Cannot resume: {truncate(str(path), 200)} is unreadable ({truncate(str(exc), 80)}).",
            "Delete the folder or pass another --out.",
        ) from exc
    diff = sorted(k for k in set(old) | set(signature) if old.get(k) != signature.get(k))
    if diff:
        shown = "; ".join(
            f"{k}: {truncate(repr(old.get(k)), 40)} before, {truncate(repr(signature.get(k)), 40)} now"
            for k in diff[:4]
        )
        raise ConfigError(
            f"Cannot resume the fine-tuning in {truncate(str(out), 200)}: its settings differ ({shown}).",
            "Rerun with the same settings to resume, or pass another --out to start anew.",
        )
    return state


def _checkpoint(out: Path, phase: int) -> dict[str, Any] | None:
    """The checkpoint of ``phase`` left by an interrupted run, if any."""
    path = out / CHECKPOINT_FILE
    if not path.is_file():
        return None
    ckpt = load_plain(
        path, ConfigError, f"checkpoint {path}", "Delete the checkpoint file to redo this fold."
    )
    return ckpt if isinstance(ckpt, dict) and ckpt.get("phase") == phase else None


# -- the model ------------------------------------------------------------------------------------
def _prepare_model(
    spec: str, weights: str | None, device: str | None, names: list[str], cfg: FinetuneConfig
) -> tuple[VideoClassifier, str]:
    """Load ``spec`` and swap its head for ``len(names)`` classes (weights drawn with the run's seed)."""
    model = load_model(spec, weights=weights, device=device)
    if not isinstance(model.module, torch.nn.Module):
        raise ModelError(
            f"{truncate(spec, 80)} is a plain callable, not an nn.Module: it cannot be fine-tuned.",
            "Return an nn.Module (or a VideoClassifier around one) from the model factory.",
        )
    gen = torch.Generator().manual_seed(loop.derived_seed(cfg.seed, -2, 0))
    head = swap_head(model.module, len(names), path=cfg.head, init_std=cfg.head_init_std, generator=gen)
    model.class_names, model.n_classes = list(names), None
    hf_config = getattr(model.module, "config", None)
    if hf_config is not None and hasattr(hf_config, "num_labels"):  # a Hugging Face model
        hf_config.num_labels = len(names)
        hf_config.id2label = dict(enumerate(names))
        hf_config.label2id = {n: i for i, n in enumerate(names)}
    return model, head


def _optimizer(module: torch.nn.Module, cfg: FinetuneConfig) -> torch.optim.Optimizer:
    return torch.optim.SGD(
        module.parameters(),
        lr=cfg.lr,
        momentum=cfg.momentum,
        nesterov=cfg.nesterov and cfg.momentum > 0,
        weight_decay=cfg.weight_decay,
    )


class _Run:
    """What every phase (a fold, or the final fit on all clips) of one fine-tuning shares."""

    def __init__(
        self,
        model: VideoClassifier,
        clips: loop.ClipStore,
        labels: torch.Tensor,
        cfg: FinetuneConfig,
        out: Path,
        progress: bool,
    ) -> None:
        self.model, self.clips, self.labels, self.cfg, self.out = model, clips, labels, cfg, out
        self.progress = progress
        module = model.module
        assert isinstance(module, torch.nn.Module)
        self.module = module
        self.init_state = {k: v.detach().clone() for k, v in module.state_dict().items()}

    def phase(self, phase: int, train_idx: torch.Tensor, test_idx: torch.Tensor, desc: str) -> list[dict]:
        """Train from the initial weights (or this phase's checkpoint); score after every epoch."""
        cfg, module = self.cfg, self.module
        ckpt = _checkpoint(self.out, phase)
        module.load_state_dict(ckpt["model"] if ckpt else self.init_state)
        opt = _optimizer(module, cfg)
        if ckpt:
            opt.load_state_dict(ckpt["optimizer"])
        history: list[dict] = list(ckpt["history"]) if ckpt else []
        steps = -(-len(train_idx) // cfg.batch_size)
        bar = tqdm(
            total=(cfg.epochs - len(history)) * steps, desc=desc, disable=not self.progress, leave=False
        )
        for epoch in range(len(history), cfg.epochs):
            lr = loop.epoch_lr(cfg.lr, epoch, cfg.lr_steps, cfg.lr_gamma)
            for group in opt.param_groups:
                group["lr"] = lr
            seed = loop.derived_seed(cfg.seed, phase, epoch)
            gen = torch.Generator().manual_seed(seed)
            with loop.seeded_global_rng(seed, self.model.device):
                loss = loop.train_epoch(
                    self.model, opt, self.clips, self.labels, train_idx, cfg.train_settings(), gen, bar
                )
            acc = (
                loop.evaluate_accuracy(self.model, self.clips, self.labels, test_idx, cfg.batch_size)
                if len(test_idx)
                else None
            )
            history.append({"epoch": epoch + 1, "lr": lr, "loss": loss, "accuracy": acc})
            ckpt_obj = {
                "phase": phase,
                "model": module.state_dict(),
                "optimizer": opt.state_dict(),
                "history": history,
            }
            _save_torch(self.out / CHECKPOINT_FILE, ckpt_obj, "fine-tuning checkpoint")
        bar.close()
        return history

    def save_weights(self, path: Path, meta: dict[str, Any]) -> None:
        """Write the module's current weights with ``meta`` (:func:`weights_payload`)."""
        state = {k: v.detach().cpu() for k, v in self.module.state_dict().items()}
        _save_torch(path, weights_payload(state, meta), "fine-tuned weights")


# -- the protocol ---------------------------------------------------------------------------------
def _cross_validate(run: _Run, state: dict[str, Any], assignment: torch.Tensor, meta: dict[str, Any]) -> None:
    """Run every unfinished fold; record its history; keep the best fold's weights if asked."""
    cfg = run.cfg
    for fold in range(cfg.folds):
        if str(fold) in state["folds"]:
            continue
        test_idx = torch.nonzero(assignment == fold).flatten()
        train_idx = torch.nonzero(assignment != fold).flatten()
        history = run.phase(fold, train_idx, test_idx, f"fold {fold + 1}/{cfg.folds}")
        accs = [h["accuracy"] for h in history]
        acc = float(accs[-1])
        best_so_far = max((f["accuracy"] for f in state["folds"].values()), default=-1.0)
        if cfg.final == "best_fold" and acc > best_so_far:
            run.save_weights(run.out / "best_fold.pt", {**meta, "fold": fold, "fold_accuracy": acc})
            state["best_fold"] = fold
        state["folds"][str(fold)] = {
            "accuracy": acc,
            "best_epoch": int(max(range(len(accs)), key=lambda i: accs[i])) + 1,
            "n_train": len(train_idx),
            "n_test": len(test_idx),
            "history": history,
        }
        _write_json(run.out / STATE_FILE, state)
        if run.progress:
            write_line(f"fold {fold + 1}/{cfg.folds}: held-out accuracy {acc:.3f} ({len(test_idx)} clips)")


def _summary(state: dict[str, Any], cfg: FinetuneConfig, out: Path) -> dict[str, Any]:
    accs = [float(state["folds"][str(f)]["accuracy"]) for f in range(cfg.folds)]
    ci = bootstrap_ci(accs, seed=cfg.seed, value_range=(0.0, 1.0))
    return {
        "fold_accuracy": accs,
        "mean_accuracy": ci["mean"],
        "ci_low": ci["ci_low"],
        "ci_high": ci["ci_high"],
        "ci_label": ci["ci_label"],
        "small_n": ci["small_n"],
        "final": cfg.final,
        "best_fold": state.get("best_fold"),
        "weights": str(out / WEIGHTS_FILE),
    }


def _save_hf(run: _Run, spec: str, out: Path) -> str | None:
    """A Hugging Face model is also written with ``save_pretrained`` (``hf:`` ignores ``--weights``).

    The processor's ``preprocessor_config.json`` of an ``hf:FOLDER`` spec is copied along, so
    ``--model hf:OUT/hf-model`` loads with the same size and normalisation.
    """
    save = getattr(run.module, "save_pretrained", None)
    if save is None:
        return None
    folder = out / "hf-model"
    source = Path(spec.partition(":")[2]).expanduser() / "preprocessor_config.json"
    with storage_errors(folder, "Hugging Face model folder"):
        save(str(folder))
        if spec.startswith("hf:") and source.is_file():
            (folder / source.name).write_bytes(source.read_bytes())
    return str(folder)


def finetune(
    model: str,
    dataset: str,
    out: str | Path,
    *,
    weights: str | None = None,
    device: str | None = None,
    config: FinetuneConfig | None = None,
    data_options: dict[str, Any] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Fine-tune ``model`` on ``dataset`` with K-fold cross-validation (removal paper Sec. 4.3).

    Parameters
    ----------
    model : str
        A model spec (``torchvision:r3d_18``, ``python:file.py:make``, ``hf:folder``).
    dataset : str
        A folder of labelled clips, ``kinetics:FILE.csv`` or ``ucf101:LIST.txt``
        (:func:`removalx.data.datasets.dataset_refs`).
    out : str or Path
        Folder for ``model.pt``, ``finetune.json`` and the checkpoint; a run there with the
        same settings is resumed.
    weights : str, optional
        Initial weights (e.g. Kinetics-400 ones) loaded into the model before the head swap.
    device : str, optional
        Where to train.
    config : FinetuneConfig, optional
        The protocol's settings (default: the paper's, else the released code's).
    data_options : dict, optional
        ``video_root`` / ``classes`` of an annotation file (as ``removalx evaluate``).
    progress : bool
        Show progress bars and one line per fold.

    Returns
    -------
    dict
        ``fold_accuracy`` (held-out accuracy of each fold after the last epoch),
        ``mean_accuracy``, its bootstrap interval (``ci_low``, ``ci_high``, ``ci_label``,
        ``small_n``), ``final``, ``best_fold`` and ``weights`` (the file for ``--weights``).
    """
    cfg = config or FinetuneConfig()
    out = Path(out)
    key, refs = _labelled(dataset, cfg, data_options or {})
    labels = torch.tensor([int(r.label) for r in refs], dtype=torch.long)  # type: ignore[arg-type]
    n_classes = int(labels.max()) + 1
    if n_classes < 2:
        raise DatasetError(
            f"Every clip of {truncate(dataset, 120)} has label 0: fine-tuning needs at least two classes.",
            "Check the labels file.",
        )
    state = _load_state(out, _signature(model, weights, key, refs, cfg))
    names = _class_names(refs, n_classes)
    clf, head = _prepare_model(model, weights, device, names, cfg)
    run = _Run(clf, loop.ClipStore(refs, cfg.cache_mb), labels, cfg, out, progress)
    meta = {"head": head, "num_classes": n_classes, "class_names": names, "spec": model, "dataset": key}
    meta.update(base_weights=weights, epochs=cfg.epochs, folds=cfg.folds, seed=cfg.seed, final=cfg.final)
    _write_json(out / STATE_FILE, state)
    if progress:
        done = len(state["folds"])
        write_line(
            f"finetune {truncate(model, 60)}: {len(refs)} clips, {n_classes} classes, head {head!r}, "
            f"{cfg.folds} folds x {cfg.epochs} epochs ({done} folds done), device {clf.device}"
        )
    assignment = loop.fold_assignment(labels.tolist(), cfg.folds, cfg.seed, cfg.stratified)
    _cross_validate(run, state, assignment, meta)
    summary = _summary(state, cfg, out)
    meta.update(cv_fold_accuracy=summary["fold_accuracy"], cv_mean_accuracy=summary["mean_accuracy"])
    if cfg.final == "all" and state.get("final") is None:
        history = run.phase(-1, torch.arange(len(refs)), torch.arange(0), "all clips")
        run.save_weights(out / WEIGHTS_FILE, meta)
        state["final"] = {"history": history, "hf_folder": _save_hf(run, model, out)}
    elif cfg.final == "best_fold" and state.get("final") is None:
        best = out / "best_fold.pt"
        with storage_errors(best, "fine-tuned weights"):
            best.replace(out / WEIGHTS_FILE)
        state["final"] = {"fold": state.get("best_fold")}
    (out / CHECKPOINT_FILE).unlink(missing_ok=True)
    state["summary"] = summary
    _write_json(out / STATE_FILE, state)
    return summary
