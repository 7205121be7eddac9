"""Dataset-level remove-and-retrain curves (KAR / ROAR) inside ``evaluate``, ``compare`` and ``ablate``.

For each method of a run and each ``kar`` / ``roar`` metric (plugin
``removalx_plugins.metrics.remove_retrain``), the training clips are explained with the
method, every training and test clip is modified at each fraction ``k`` (the top-``k`` pixels
kept or removed, :mod:`removalx.metrics.retrain`), the metric's zoo architecture is trained
from scratch on the modified training clips and its accuracy on the modified test clips is
one point of the method's curve (Hooker et al. 2019, Sec. 3; STEP journal Sec. IV-C). The
test clips are the run's own clips, explained and stored by the per-clip loop first. The
random map (N(0, 1) per pixel, as the run's ``random`` baseline draws it) is always added
as the reference line.

Points are stored in the table ``retrain_curves`` of the results database as soon as they
exist, keyed by (experiment, method recipe hash, metric hash, model, fraction): a rerun
computes only the missing points, and explains a method's training clips only if one of its
points is missing.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from removalx.core.classifier import VideoClassifier
from removalx.core.progress import tqdm
from removalx.core.registry import Registry
from removalx.data.datasets import Item, dataset_items
from removalx.errors import ConfigError, DatasetError, truncate
from removalx.experiments.runner import RANDOM, Method, MetricSpec, random_attribution
from removalx.experiments.store import Store, config_hash
from removalx.metrics import ensure_metric_plugins
from removalx.metrics.retrain import keep_mask, modify_clips, retrain_accuracy

__all__ = [
    "TABLE",
    "curve_rows",
    "format_curves",
    "is_dataset_metric",
    "run_retrain",
    "split_metrics",
]

TABLE = """CREATE TABLE IF NOT EXISTS retrain_curves (
    experiment TEXT, method TEXT, recipe_hash TEXT, metric TEXT, metric_hash TEXT, mode TEXT, model TEXT,
    architecture TEXT, fraction REAL, accuracy REAL, accuracies TEXT, n_train INTEGER, n_test INTEGER,
    time_s REAL, run_id INTEGER, created REAL,
    PRIMARY KEY (experiment, recipe_hash, metric_hash, model, fraction))"""

_CHUNK = 16  # clips modified and resized at once


def is_dataset_metric(spec: MetricSpec, registry: Registry | None = None) -> bool:
    """Whether the metric scores a method over a data set (KAR / ROAR) instead of one explanation."""
    reg = ensure_metric_plugins(registry)
    return bool(getattr(reg.get("metric", spec.name).make(spec.config), "dataset_level", False))


def split_metrics(
    metrics: list[MetricSpec], registry: Registry | None = None
) -> tuple[list[MetricSpec], list[MetricSpec]]:
    """``(per-explanation metrics, dataset-level metrics)``."""
    flags = [is_dataset_metric(m, registry) for m in metrics]
    return [m for m, f in zip(metrics, flags) if not f], [m for m, f in zip(metrics, flags) if f]


def _ensure_table(store: Store) -> None:
    store._sql(TABLE)


def _done(store: Store, experiment: str, recipe_hash: str, metric_hash: str, model: str) -> set[float]:
    rows = store._sql(
        "SELECT fraction FROM retrain_curves WHERE experiment = ? AND recipe_hash = ? AND metric_hash = ? "
        "AND model = ?",
        (experiment, recipe_hash, metric_hash, model),
    ).fetchall()
    return {round(float(r[0]), 9) for r in rows}


def curve_rows(store: Store, experiment: str | None = None) -> list[dict[str, Any]]:
    """Stored curve points (ordered by experiment, metric, method, fraction); ``[]`` if none exist."""
    try:
        where, params = ("WHERE experiment = ?", (experiment,)) if experiment is not None else ("", ())
        cur = store.db.execute(
            "SELECT experiment, method, metric, mode, model, architecture, fraction, accuracy, accuracies, "
            f"n_train, n_test FROM retrain_curves {where} ORDER BY experiment, metric, rowid",
            params,
        )
    except sqlite3.OperationalError:  # a database without the table: no curves
        return []
    out = []
    for r in cur.fetchall():
        d = dict(zip(("experiment", "method", "metric", "mode", "model", "architecture", "fraction"), r))
        d.update(accuracy=r[7], accuracies=json.loads(r[8] or "[]"), n_train=r[9], n_test=r[10])
        out.append(d)
    return sorted(out, key=lambda d: (d["experiment"], d["metric"], d["method"], d["fraction"]))


def _architecture(cfg: Any, model_key: str) -> str:
    from removalx.zoo.models import ZOO

    arch = cfg.architecture
    if arch is None:
        spec = model_key.split("@", 1)[0]
        arch = spec[4:] if spec.startswith("zoo:") else None
    if arch is None or arch not in ZOO:
        raise ConfigError(
            f"kar/roar retrain a zoo architecture; the model {truncate(model_key, 80)!r} is not one "
            f"and no architecture was given (got {truncate(str(cfg.architecture), 40)!r}).",
            f"Evaluate a zoo model, or set --metric-set kar.architecture=NAME with NAME one of {', '.join(ZOO)}.",
        )
    return arch


def _train_items(cfg: Any, dataset: str, frames: int, size: int) -> list[Item]:
    if cfg.train_data == "auto":
        if not dataset.startswith("zoo:synthetic"):
            raise ConfigError(
                f"kar/roar need training clips: train_data 'auto' works for the zoo's synthetic data "
                f"sets, the evaluated data set is {truncate(dataset, 80)!r}.",
                "Set --metric-set kar.train_data=FOLDER (a folder data set with labels).",
            )
        _, items, _ = dataset_items(dataset, cfg.n_train, frames=frames, size=size, seed=cfg.train_seed)
    else:
        _, items, _ = dataset_items(cfg.train_data, cfg.n_train, frames=frames, size=size)
    out = list(items)
    if any(it.label is None for it in out):
        raise DatasetError(
            "kar/roar retrain on labelled clips; some training clips have no label.",
            "Give the training folder a labels.csv (file,label rows).",
        )
    return out


def _maps(method: Method, model: VideoClassifier, items: list[Item], target_mode: str) -> torch.Tensor:
    """``float32[N, T, H, W]``: the method's map of every clip (explained now)."""
    out = []
    for it in items:
        if target_mode == "label" and it.label is not None:
            target = int(it.label)
        else:
            with torch.inference_mode():
                target = int(model(it.video.to(model.device)[None]).argmax(1)[0])
        if method.recipe is None:
            attr = random_attribution(it.video, target, method.seed, it.item)
        else:
            assert method.explainer is not None
            attr = method.explainer.explain_clip(model, it.video, target, progress=False)
        out.append(attr.values.detach().float().cpu())
    return torch.stack(out)


def _modified_native(
    videos: torch.Tensor,
    maps: torch.Tensor,
    fraction: float,
    mode: Literal["kar", "roar"],
    fill: torch.Tensor,
) -> torch.Tensor:
    """``uint8[N, 3, T', H', W']``: modified clips resized to the zoo's native size."""
    from removalx.zoo.train import native_clips

    parts = []
    for i in range(0, len(videos), _CHUNK):
        v = videos[i : i + _CHUNK].float() / 255.0
        keep = keep_mask(maps[i : i + _CHUNK], fraction, mode)
        parts.append(native_clips(modify_clips(v, keep, fill)))
    return torch.cat(parts)


def _as_uint8(items: list[Item]) -> torch.Tensor:
    return torch.stack([(it.video.clamp(0, 1) * 255.0).round().to(torch.uint8) for it in items])


def _with_random(methods: list[Method]) -> list[Method]:
    """``methods`` with the random reference line added (if it is not there yet)."""
    if all(m.label != RANDOM for m in methods):
        seed = methods[0].seed if methods else 0
        methods = [*methods, Method(RANDOM, None, "random-normal-v2", seed)]
    return methods


def _test_clips(store: Store, test_ids: list[tuple[str, str]]) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``(uint8[N, T, H, W, C], long[N] labels)`` of the run's stored clips; None without clips."""
    test_videos, test_y = [], []
    for ds, item in test_ids:
        v = store.video(ds, item)
        if v is None or v.get("label") is None:
            raise DatasetError(
                f"kar/roar test on labelled clips; clip {truncate(item, 80)!r} has no label.",
                "Use a labelled data set (zoo:synthetic, or a folder with labels.csv).",
            )
        test_videos.append((v["video"].clamp(0, 1) * 255.0).round().to(torch.uint8))
        test_y.append(int(v["label"]))
    if not test_videos:
        return None
    return torch.stack(test_videos), torch.tensor(test_y, dtype=torch.long)


def _missing_points(
    store: Store,
    experiment: str,
    model_key: str,
    methods: list[Method],
    specs: list[MetricSpec],
    objs: dict[str, Any],
) -> list[tuple[Method, MetricSpec, list[float]]]:
    """``(method, metric, fractions)`` of every curve with points not stored yet."""
    todo = []
    for method in methods:
        for s in specs:
            cfg = objs[s.label].config
            done = _done(store, experiment, method.recipe_hash, s.hash, model_key)
            missing = [f for f in cfg.fractions if round(float(f), 9) not in done]
            if missing:
                todo.append((method, s, missing))
    return todo


@dataclass
class _TrainSet:
    """A metric's training clips, as uint8 clips with their labels and per-channel mean."""

    key: str
    items: list[Item]
    u8: torch.Tensor
    labels: torch.Tensor
    fill: torch.Tensor


@dataclass
class _Retrain:
    """One run's retraining: its test clips, and the training sets and maps made so far."""

    store: Store
    experiment: str
    model: VideoClassifier
    model_key: str
    test_ids: list[tuple[str, str]]
    test_u8: torch.Tensor
    test_labels: torch.Tensor
    dataset: str
    frames: int
    size: int
    run_id: int
    target_mode: str
    train_cache: dict[str, _TrainSet] = field(default_factory=dict)
    maps_done: dict[tuple[str, str], tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)

    def train_set(self, cfg: Any) -> _TrainSet:
        """The training clips of a metric's settings (made once per settings)."""
        key = config_hash([cfg.train_data, cfg.n_train, cfg.train_seed])
        if key not in self.train_cache:
            items = _train_items(cfg, self.dataset, self.frames, self.size)
            u8 = _as_uint8(items)
            fill = u8.float().mean(dim=(0, 1, 2, 3)) / 255.0  # per-channel training mean (Hooker Sec. 3)
            labels = torch.tensor([int(it.label) for it in items], dtype=torch.long)  # type: ignore[arg-type]
            self.train_cache[key] = _TrainSet(key, items, u8, labels, fill)
        return self.train_cache[key]

    def maps(self, method: Method, train: _TrainSet) -> tuple[torch.Tensor, torch.Tensor]:
        """``(train maps, test maps)`` of ``method`` (made once per method and training set)."""
        mk = (method.label, train.key)
        if mk not in self.maps_done:
            test_maps = self.test_maps(method)
            self.maps_done[mk] = (
                _maps(method, self.model, train.items, self.target_mode),
                torch.stack(test_maps),
            )
        return self.maps_done[mk]

    def test_maps(self, method: Method) -> list[torch.Tensor]:
        """The stored map of every test clip, or explained now when none is stored."""
        test_maps = []
        for ds, item in self.test_ids:
            eid = self.store.find_explanation(ds, item, method.recipe_hash, self.model_key, method.seed)
            if eid is None:  # the random reference line of a run without a random baseline
                v = self.store.video(ds, item)
                assert v is not None
                test_maps.append(
                    _maps(method, self.model, [Item(ds, item, v["video"], v["label"])], self.target_mode)[0]
                )
            else:
                test_maps.append(self.store.attribution(eid).values.detach().float().cpu())
        return test_maps

    def point(
        self,
        method: Method,
        s: MetricSpec,
        obj: Any,
        arch: str,
        fraction: float,
        train: _TrainSet,
        maps: tuple[torch.Tensor, torch.Tensor],
    ) -> None:
        """Retrain at ``fraction`` (``cfg.repeats`` times) on clips modified by ``maps``; store the point."""
        cfg = obj.config
        train_maps, test_maps = maps
        t0 = time.perf_counter()
        x_train = _modified_native(train.u8, train_maps, fraction, obj.mode, train.fill)
        x_test = _modified_native(self.test_u8, test_maps, fraction, obj.mode, train.fill)
        accs = [
            retrain_accuracy(
                arch, x_train, train.labels, x_test, self.test_labels, seed=cfg.seed + r, epochs=cfg.epochs
            )
            for r in range(cfg.repeats)
        ]
        self.store._sql(
            "INSERT INTO retrain_curves (experiment, method, recipe_hash, metric, metric_hash, mode, model, "
            "architecture, fraction, accuracy, accuracies, n_train, n_test, time_s, run_id, created) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (experiment, recipe_hash, metric_hash, model, fraction) DO NOTHING",
            (
                self.experiment,
                method.label,
                method.recipe_hash,
                s.label,
                s.hash,
                obj.mode,
                self.model_key,
                arch,
                float(fraction),
                sum(accs) / len(accs),
                json.dumps(accs),
                len(train.items),
                len(self.test_ids),
                time.perf_counter() - t0,
                self.run_id,
                time.time(),
            ),
        )


def run_retrain(
    store: Store,
    experiment: str,
    methods: list[Method],
    specs: list[MetricSpec],
    model: VideoClassifier,
    model_key: str,
    test_ids: list[tuple[str, str]],
    *,
    dataset: str,
    frames: int,
    size: int,
    run_id: int,
    target_mode: str = "pred",
    progress: bool = True,
    registry: Registry | None = None,
) -> int:
    """Compute the missing KAR / ROAR points of every method; return how many were computed.

    Parameters
    ----------
    test_ids : list of (dataset, item)
        The run's clips; each must have a stored video with a label and an explanation by
        every method (the per-clip loop stores them).
    dataset, frames, size
        The run's data set spec and clip shape (training clips are made alike).
    """
    if not specs:
        return 0
    reg = ensure_metric_plugins(registry)
    _ensure_table(store)
    methods = _with_random(methods)
    objs = {s.label: reg.get("metric", s.name).make(s.config) for s in specs}
    archs = {s.label: _architecture(objs[s.label].config, model_key) for s in specs}
    test = _test_clips(store, test_ids)
    if test is None:
        return 0
    run = _Retrain(
        store,
        experiment,
        model,
        model_key,
        test_ids,
        test_u8=test[0],
        test_labels=test[1],
        dataset=dataset,
        frames=frames,
        size=size,
        run_id=run_id,
        target_mode=target_mode,
    )
    todo = _missing_points(store, experiment, model_key, methods, specs, objs)
    n_points = sum(len(f) for _, _, f in todo)
    bar = tqdm(total=n_points, desc="retrain (kar/roar)", unit="model", disable=not progress or n_points == 0)
    computed = 0
    with bar:
        for method, s, missing in todo:
            obj = objs[s.label]
            train = run.train_set(obj.config)
            maps = run.maps(method, train)
            for fraction in missing:
                run.point(method, s, obj, archs[s.label], fraction, train, maps)
                computed += 1
                bar.update(1)
    return computed


def format_curves(rows: list[dict[str, Any]]) -> list[str]:
    """Text table lines: one per (metric, method), test accuracy at each fraction."""
    out: list[str] = []
    by_metric: dict[str, dict[str, dict[float, float]]] = {}
    for r in rows:
        by_metric.setdefault(r["metric"], {}).setdefault(r["method"], {})[r["fraction"]] = r["accuracy"]
    for metric, by_method in by_metric.items():
        mode = next(r["mode"] for r in rows if r["metric"] == metric)
        fractions = sorted({f for m in by_method.values() for f in m})
        better = "higher" if mode == "kar" else "lower"
        out.append(
            f"{metric} (test accuracy after retraining; {better} is better; k = share of pixels "
            f"{'kept' if mode == 'kar' else 'removed'})"
        )
        header = ["method", *(f"k={f:g}" for f in fractions)]
        body = [[m, *(f"{v[f]:.3f}" if f in v else "-" for f in fractions)] for m, v in by_method.items()]
        widths = [max(len(x) for x in col) for col in zip(header, *body)]
        out.extend("  ".join(x.ljust(w) for x, w in zip(line, widths)).rstrip() for line in [header, *body])
    return out
