"""The SQLite result store of dataset-scale runs (DESIGN.md §5).

Every explanation (its values as an ``.npy`` blob) and every metric score is written and
committed as soon as it exists, so a run that is killed loses at most the item it was
working on, and a rerun skips what is stored. An explanation is identified by
``(dataset, item, recipe_hash, model, seed)``; a score by ``(explanation, metric_hash)``.
WAL journaling lets a report or a test read the file while a run writes it.
"""

from __future__ import annotations

import hashlib
import io
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from removalx.errors import ConfigError
from removalx.types import Attribution

__all__ = ["Store", "config_hash", "from_npy", "to_npy"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT, experiment TEXT, args TEXT,
    started REAL, finished REAL, computed INTEGER DEFAULT 0, skipped INTEGER DEFAULT 0);
CREATE TABLE IF NOT EXISTS experiments (
    name TEXT PRIMARY KEY, kind TEXT, methods TEXT, metrics TEXT, dataset TEXT, args TEXT, updated REAL);
CREATE TABLE IF NOT EXISTS videos (
    dataset TEXT, item TEXT, label INTEGER, source TEXT, video BLOB, evidence BLOB,
    evidence_frames TEXT, PRIMARY KEY (dataset, item));
CREATE TABLE IF NOT EXISTS explanations (
    id INTEGER PRIMARY KEY AUTOINCREMENT, dataset TEXT, item TEXT, method TEXT, recipe_hash TEXT,
    model TEXT, seed INTEGER, recipe TEXT, target INTEGER, plan_digest TEXT, n_forward INTEGER,
    time_s REAL, "values" BLOB, lower_is_important INTEGER, meta TEXT, run_id INTEGER, created REAL,
    UNIQUE (dataset, item, recipe_hash, model, seed));
CREATE TABLE IF NOT EXISTS scores (
    explanation_id INTEGER, metric TEXT, metric_hash TEXT, config TEXT, value REAL, details TEXT,
    n_forward INTEGER, time_s REAL, run_id INTEGER, created REAL,
    PRIMARY KEY (explanation_id, metric_hash));
"""


def config_hash(data: Any) -> str:
    """Short stable hash of JSON-able ``data`` (sorted keys)."""
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def to_npy(array: Any) -> bytes:
    """``.npy`` bytes of a tensor or array."""
    buf = io.BytesIO()
    arr = array.detach().cpu().numpy() if isinstance(array, torch.Tensor) else np.asarray(array)
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def from_npy(blob: bytes) -> np.ndarray:
    """Array from :func:`to_npy` bytes."""
    return np.load(io.BytesIO(blob), allow_pickle=False)


class Store:
    """A results database (one SQLite file).

    Parameters
    ----------
    path : str or Path
        The file; created with its tables when missing.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.parent and not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(str(self.path), timeout=30)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.executescript(SCHEMA)
            self.db.commit()
        except sqlite3.DatabaseError as exc:
            raise ConfigError(
                f"{self.path} is not a removalx results database ({exc}).",
                "Pass --db a new file name or a file written by `removalx evaluate/compare/ablate`.",
            ) from exc
        self.db.row_factory = sqlite3.Row

    def close(self) -> None:
        self.db.close()

    # -- runs and experiments ------------------------------------------------------------
    def start_run(self, kind: str, experiment: str, args: dict[str, Any]) -> int:
        cur = self.db.execute(
            "INSERT INTO runs (kind, experiment, args, started) VALUES (?, ?, ?, ?)",
            (kind, experiment, json.dumps(args, default=str), time.time()),
        )
        self.db.commit()
        return int(cur.lastrowid or 0)

    def finish_run(self, run_id: int, computed: int, skipped: int) -> None:
        self.db.execute(
            "UPDATE runs SET finished = ?, computed = ?, skipped = ? WHERE id = ?",
            (time.time(), computed, skipped, run_id),
        )
        self.db.commit()

    def put_experiment(
        self, name: str, kind: str, methods: list[str], metrics: list[str], dataset: str, args: dict[str, Any]
    ) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO experiments VALUES (?, ?, ?, ?, ?, ?, ?)",
            (name, kind, json.dumps(methods), json.dumps(metrics), dataset, json.dumps(args, default=str),
             time.time()),
        )
        self.db.commit()

    def experiments(self) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT * FROM experiments ORDER BY updated").fetchall()
        out = []
        for r in rows:
            d = dict(r)
            d["methods"] = json.loads(d["methods"])
            d["metrics"] = json.loads(d["metrics"])
            d["args"] = json.loads(d["args"])
            out.append(d)
        return out

    # -- videos ----------------------------------------------------------------------------
    def has_video(self, dataset: str, item: str) -> bool:
        q = "SELECT 1 FROM videos WHERE dataset = ? AND item = ?"
        return self.db.execute(q, (dataset, item)).fetchone() is not None

    def put_video(
        self,
        dataset: str,
        item: str,
        video: torch.Tensor,
        label: int | None,
        source: dict[str, Any],
        evidence: torch.Tensor | None = None,
        evidence_frames: list[int] | None = None,
    ) -> None:
        """Store the clip as ``uint8`` (for reports) with its ground truth."""
        v8 = (video.detach().cpu().clamp(0, 1) * 255).round().to(torch.uint8)
        self.db.execute(
            "INSERT OR IGNORE INTO videos VALUES (?, ?, ?, ?, ?, ?, ?)",
            (dataset, item, label, json.dumps(source), to_npy(v8),
             None if evidence is None else to_npy(evidence.bool()),
             None if evidence_frames is None else json.dumps([int(f) for f in evidence_frames])),
        )
        self.db.commit()

    def video(self, dataset: str, item: str) -> dict[str, Any] | None:
        r = self.db.execute("SELECT * FROM videos WHERE dataset = ? AND item = ?", (dataset, item)).fetchone()
        if r is None:
            return None
        return {
            "dataset": dataset,
            "item": item,
            "label": r["label"],
            "source": json.loads(r["source"]),
            "video": torch.from_numpy(from_npy(r["video"])).float() / 255.0,
            "evidence": None if r["evidence"] is None else torch.from_numpy(from_npy(r["evidence"])),
            "evidence_frames": None if r["evidence_frames"] is None else json.loads(r["evidence_frames"]),
        }

    # -- explanations ------------------------------------------------------------------------
    def find_explanation(self, dataset: str, item: str, recipe_hash: str, model: str, seed: int) -> int | None:
        r = self.db.execute(
            "SELECT id FROM explanations WHERE dataset = ? AND item = ? AND recipe_hash = ? AND model = ? AND seed = ?",
            (dataset, item, recipe_hash, model, seed),
        ).fetchone()
        return None if r is None else int(r["id"])

    def put_explanation(
        self,
        *,
        dataset: str,
        item: str,
        method: str,
        recipe_hash: str,
        model: str,
        seed: int,
        recipe: dict[str, Any] | None,
        attribution: Attribution,
        run_id: int,
    ) -> int:
        meta = attribution.meta
        keep = {k: meta[k] for k in ("timings", "n_samples", "n_features", "batch_size", "cached_outputs",
                                     "target_name", "n_backward") if k in meta}
        cur = self.db.execute(
            'INSERT INTO explanations (dataset, item, method, recipe_hash, model, seed, recipe, target, '
            'plan_digest, n_forward, time_s, "values", lower_is_important, meta, run_id, created) '
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (dataset, item, method, recipe_hash, model, seed, json.dumps(recipe), int(attribution.target),
             meta.get("plan_digest"), int(meta.get("n_forward", 0)),
             float(meta.get("timings", {}).get("total", 0.0)), to_npy(attribution.values.float()),
             int(attribution.lower_is_important), json.dumps(keep, default=str), run_id, time.time()),
        )
        self.db.commit()
        return int(cur.lastrowid or 0)

    def attribution(self, explanation_id: int) -> Attribution:
        """The stored attribution (values, target, recipe and orientation; no feature space)."""
        r = self.db.execute("SELECT * FROM explanations WHERE id = ?", (explanation_id,)).fetchone()
        if r is None:
            raise ConfigError(f"No explanation {explanation_id} in {self.path}.")
        meta = json.loads(r["meta"] or "{}")
        meta.update(
            recipe=json.loads(r["recipe"]) if r["recipe"] else None,
            lower_is_important=bool(r["lower_is_important"]),
            plan_digest=r["plan_digest"],
            n_forward=r["n_forward"],
            method=r["method"],
        )
        values = torch.from_numpy(from_npy(r["values"]).copy())
        return Attribution(values=values, target=int(r["target"]), meta=meta)

    def explanations(self, methods: list[str] | None = None, dataset: str | None = None) -> list[dict[str, Any]]:
        q = ("SELECT id, dataset, item, method, recipe_hash, model, seed, target, plan_digest, n_forward, "
             "time_s, run_id FROM explanations")
        rows = [dict(r) for r in self.db.execute(q + " ORDER BY id").fetchall()]
        if methods is not None:
            rows = [r for r in rows if r["method"] in methods]
        if dataset is not None:
            rows = [r for r in rows if r["dataset"] == dataset]
        return rows

    # -- scores ---------------------------------------------------------------------------------
    def has_score(self, explanation_id: int, metric_hash: str) -> bool:
        q = "SELECT 1 FROM scores WHERE explanation_id = ? AND metric_hash = ?"
        return self.db.execute(q, (explanation_id, metric_hash)).fetchone() is not None

    def put_score(
        self,
        explanation_id: int,
        metric: str,
        metric_hash: str,
        config: dict[str, Any],
        result: dict[str, Any],
        time_s: float,
        run_id: int,
    ) -> None:
        details = {k: v for k, v in result.items() if k != "value"}
        self.db.execute(
            "INSERT OR REPLACE INTO scores VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (explanation_id, metric, metric_hash, json.dumps(config), float(result["value"]),
             json.dumps(details, default=str), int(result.get("n_forward", 0)), time_s, run_id, time.time()),
        )
        self.db.commit()

    def scores(self) -> list[dict[str, Any]]:
        """Every score joined with its explanation (``details`` parsed)."""
        q = ("SELECT s.explanation_id, s.metric, s.metric_hash, s.value, s.details, s.n_forward AS metric_n_forward, "
             "s.time_s AS metric_time_s, e.dataset, e.item, e.method, e.recipe_hash, e.model, e.seed, e.target, "
             "e.plan_digest, e.n_forward, e.time_s FROM scores s JOIN explanations e ON e.id = s.explanation_id "
             "ORDER BY e.id, s.metric")
        out = []
        for r in self.db.execute(q).fetchall():
            d = dict(r)
            d["details"] = json.loads(d["details"] or "{}")
            out.append(d)
        return out
