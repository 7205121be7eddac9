"""The SQLite result store of dataset-scale runs (docs/experiments.md).

Every explanation (its values as an ``.npy`` blob) and every metric score is written and
committed as soon as it exists, so a run that is killed loses at most the item it was
working on, and a rerun skips what is stored. An explanation is identified by
``(dataset, item, recipe_hash, model, seed)``; a score by ``(explanation, metric_hash)``.

Several runs may write one database at once: WAL journaling and a busy timeout serialise
their writes, and a unit another run stored first is kept and not written again (inserts
``ON CONFLICT DO NOTHING``), so the file never holds a duplicate and loses no row. A report
opens the database read-only and never creates or alters anything. A file that is not a
removalx results database (not SQLite, a missing table, a table without the expected
columns or unique key) is refused with :class:`~removalx.errors.StorageError`, never repaired
silently.
"""

from __future__ import annotations

import hashlib
import io
import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext, suppress
from pathlib import Path
from typing import Any

import numpy as np
import torch

from removalx.core.types import Attribution
from removalx.errors import StorageError, truncate

__all__ = [
    "SCHEMA",
    "Store",
    "config_hash",
    "from_npy",
    "immediate_transaction",
    "schema_problems",
    "to_npy",
]

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

#: The unique key of each table whose inserts skip rows stored by another run.
UNIQUE_KEYS: dict[str, tuple[str, ...]] = {
    "experiments": ("name",),
    "videos": ("dataset", "item"),
    "explanations": ("dataset", "item", "recipe_hash", "model", "seed"),
    "scores": ("explanation_id", "metric_hash"),
}

#: Tables whose ``id`` (``INTEGER PRIMARY KEY``) other rows refer to.
ROWID_TABLES = ("runs", "explanations")

#: Attribution ``meta`` keys stored in the ``meta`` column of an explanation.
META_KEYS = (
    "timings",
    "n_samples",
    "n_features",
    "batch_size",
    "cached_outputs",
    "target_name",
    "n_backward",
    "areas",  # extremal explainers: what Eq. 4 (min_preservation_ratio) reads
    "area_rewards",
    "clean_reward",
)

#: Seconds a writer waits for another run's write to finish before giving up.
BUSY_TIMEOUT = 60.0

_FIX_NEW = "Pass --db a new file name, or a database written by `removalx evaluate/compare/ablate`."


def _expected_columns() -> dict[str, list[str]]:
    con = sqlite3.connect(":memory:")
    try:
        con.executescript(SCHEMA)
        names = [
            r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY rowid")
        ]
        return {
            t: [r[1] for r in con.execute(f"PRAGMA table_info({t})")]
            for t in names
            if not t.startswith("sqlite_")
        }
    finally:
        con.close()


#: Columns of every table (what the schema above creates).
EXPECTED_COLUMNS: dict[str, list[str]] = _expected_columns()


def _clip(text: object, n: int = 200) -> str:
    return truncate(str(text), n)


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


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def schema_problems(db: sqlite3.Connection) -> list[str]:
    """What keeps ``db`` from being a removalx results database (empty list: nothing).

    Names every missing table, every table's missing columns and missing unique key.
    Extra tables and columns are allowed. Reads only.
    """
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    out: list[str] = []
    missing = [t for t in EXPECTED_COLUMNS if t not in tables]
    if missing:
        out.append(f"missing table{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    for table, columns in EXPECTED_COLUMNS.items():
        if table not in tables:
            continue
        info = db.execute(f"PRAGMA table_info({table})").fetchall()
        have = {r[1] for r in info}
        lack = [c for c in columns if c not in have]
        if lack:
            out.append(f"table {table} lacks column{'s' if len(lack) > 1 else ''} {', '.join(lack)}")
            continue
        key = UNIQUE_KEYS.get(table)
        if key and not _has_unique_key(db, table, key):
            out.append(f"table {table} lacks the unique key ({', '.join(key)})")
        if table in ROWID_TABLES and not any(
            r[1] == "id" and r[5] == 1 and str(r[2]).upper() == "INTEGER" for r in info
        ):
            out.append(f"table {table} lacks its primary key id INTEGER PRIMARY KEY")
    return out


def _has_unique_key(db: sqlite3.Connection, table: str, key: tuple[str, ...]) -> bool:
    for row in db.execute(f"PRAGMA index_list({table})"):
        if not row[2] or (len(row) > 4 and row[4]):  # not unique, or a partial index
            continue
        cols = tuple(r[2] for r in db.execute(f"PRAGMA index_info({_quote(str(row[1]))})"))
        if set(cols) == set(key):
            return True
    return False


@contextmanager
def immediate_transaction(db: sqlite3.Connection) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` on ``db`` (autocommit mode): committed on success, rolled back on error."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        with suppress(sqlite3.Error):
            db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


class Store:
    """A results database (one SQLite file).

    Parameters
    ----------
    path : str or Path
        The file. For writing, created with its tables when missing or empty.
    read_only : bool
        Open an existing database without ever writing to it (``report``): a missing file
        is an error, and the connection cannot create or alter anything.

    Raises
    ------
    StorageError
        The file is missing (read-only), is not an SQLite database, or is an SQLite
        database that is not a removalx results database (the message names what is wrong).
    """

    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        if self.path.exists() and not self.path.is_file():
            raise StorageError(f"{_clip(self.path, 300)} is a folder, not a results database file.", _FIX_NEW)
        if read_only:
            if not self.path.is_file():
                raise StorageError(
                    f"No results database at {_clip(self.path, 300)}.",
                    "Run evaluate/compare/ablate with --db first, or check the path.",
                )
            target, uri = f"{self.path.resolve().as_uri()}?mode=ro", True
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            target, uri = str(self.path), False
        try:
            self.db = sqlite3.connect(target, timeout=BUSY_TIMEOUT, uri=uri, isolation_level=None)
        except sqlite3.Error as exc:
            raise StorageError(
                f"Cannot open the results database {_clip(self.path, 300)}: {_clip(exc)}.",
                "Check the path and its permissions.",
            ) from exc
        try:
            if read_only:
                problems = schema_problems(self.db)
            else:
                self.db.execute("PRAGMA journal_mode=WAL")
                problems = self._init_schema()
        except sqlite3.DatabaseError as exc:
            self.db.close()
            raise StorageError(
                f"{_clip(self.path, 300)} is not a removalx results database ({_clip(exc)}).", _FIX_NEW
            ) from exc
        if problems:
            self.db.close()
            raise StorageError(
                f"{_clip(self.path, 300)} is not a valid removalx results database: {'; '.join(problems)}.",
                "It was damaged or written by another program. Pass --db a new file name to start "
                "afresh, or restore the file from a backup; removalx does not repair it.",
            )
        self.db.row_factory = sqlite3.Row

    def _init_schema(self) -> list[str]:
        """Create the tables in an empty database; otherwise check them (one transaction)."""
        with self._transaction():
            if self.db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' LIMIT 1").fetchone() is None:
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        self.db.execute(statement)
                return []
            return schema_problems(self.db)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """An immediate (write-locked) transaction: committed on success, rolled back on error."""
        with immediate_transaction(self.db):
            yield

    def _sql(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        """Run one statement (autocommitted); database failures become :class:`StorageError`."""
        try:
            return self.db.execute(sql, params)
        except sqlite3.DatabaseError as exc:
            readonly = " (opened read-only)" if self.read_only else ""
            raise StorageError(
                f"Results database {_clip(self.path, 300)}{readonly}: {_clip(exc)}.",
                "Check that the file is not damaged and that no other program holds it locked.",
            ) from exc

    def _json(self, text: Any, where: str) -> Any:
        try:
            return json.loads(text)
        except (TypeError, ValueError, RecursionError) as exc:
            raise StorageError(
                f"{_clip(self.path, 300)}: {where} is not valid JSON ({_clip(exc, 100)}).",
                "The database was damaged or edited by hand; restore it or start a new one.",
            ) from exc

    def _array(self, blob: Any, where: str) -> np.ndarray:
        try:
            return from_npy(blob)
        except (TypeError, ValueError, OSError, EOFError) as exc:
            raise StorageError(
                f"{_clip(self.path, 300)}: {where} is not a valid .npy array ({_clip(exc, 100)}).",
                "The database was damaged or edited by hand; restore it or start a new one.",
            ) from exc

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes into one transaction (committed together, or rolled back on error)."""
        try:
            with self._transaction():
                yield
        except sqlite3.DatabaseError as exc:
            raise StorageError(
                f"Results database {_clip(self.path, 300)}: {_clip(exc)}.",
                "Check that the file is not damaged and that no other program holds it locked.",
            ) from exc

    def to_pandas(self, methods: list[str] | None = None, metrics: list[str] | None = None) -> Any:
        """Every score as a ``pandas.DataFrame``, one row per video x method x metric.

        Columns: ``dataset, item, label, method, metric, value, target, n_forward, time_s,
        metric_time_s, plan_digest, seed, model, recipe_hash``. Needs the ``pandas`` extra
        (``pip install removalx[pandas]``).

        Parameters
        ----------
        methods, metrics : list of str, optional
            Keep only these method / metric labels.
        """
        from removalx.experiments.frames import scores_frame

        return scores_frame(self, methods, metrics)

    # -- runs and experiments ------------------------------------------------------------
    def start_run(self, kind: str, experiment: str, args: dict[str, Any]) -> int:
        cur = self._sql(
            "INSERT INTO runs (kind, experiment, args, started) VALUES (?, ?, ?, ?)",
            (kind, experiment, json.dumps(args, default=str), time.time()),
        )
        return int(cur.lastrowid or 0)

    def finish_run(self, run_id: int, computed: int, skipped: int) -> None:
        self._sql(
            "UPDATE runs SET finished = ?, computed = ?, skipped = ? WHERE id = ?",
            (time.time(), computed, skipped, run_id),
        )

    def put_experiment(
        self, name: str, kind: str, methods: list[str], metrics: list[str], dataset: str, args: dict[str, Any]
    ) -> list[str]:
        """Record experiment ``name``; a rerun adds its metrics to the stored list, never drops one.

        The methods, data set and arguments are the latest run's; the metric list is the stored
        one followed by this run's new metrics, so a rerun with other ``--metrics`` keeps the
        scores of the earlier metrics in the report. Read and write are one transaction (two
        runs never lose each other's metrics). Returns the metrics kept from earlier runs that
        this run did not name.
        """
        with nullcontext() if self.db.in_transaction else self.transaction():
            row = self._sql("SELECT metrics FROM experiments WHERE name = ?", (name,)).fetchone()
            before = self._stored_names(row[0]) if row is not None else []
            merged = before + [m for m in metrics if m not in before]
            self._sql(
                "INSERT INTO experiments (name, kind, methods, metrics, dataset, args, updated) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, "
                "methods = excluded.methods, metrics = excluded.metrics, dataset = excluded.dataset, "
                "args = excluded.args, updated = excluded.updated",
                (
                    name,
                    kind,
                    json.dumps(methods),
                    json.dumps(merged),
                    dataset,
                    json.dumps(args, default=str),
                    time.time(),
                ),
            )
        return [m for m in before if m not in metrics]

    @staticmethod
    def _stored_names(text: Any) -> list[str]:
        """A stored JSON list of names (a damaged value counts as empty: the new list replaces it)."""
        try:
            value = json.loads(text)
        except (TypeError, ValueError, RecursionError):
            return []
        return [str(v) for v in value] if isinstance(value, list) else []

    def method_records(self, methods: list[str]) -> dict[str, dict[str, Any]]:
        """``{method: {"recipe": ..., "meta": ...}}`` of each method's first stored explanation.

        What the report reads a method's display name from; a value that is not valid JSON is
        left out (``{}``).
        """
        if not methods:
            return {}
        marks = ", ".join("?" for _ in methods)
        q = f"SELECT method, recipe, meta FROM explanations WHERE method IN ({marks}) ORDER BY id"
        out: dict[str, dict[str, Any]] = {}
        for r in self._sql(q, tuple(methods)).fetchall():
            if r["method"] not in out:
                out[r["method"]] = {k: self._loose_json(r[k]) for k in ("recipe", "meta")}
        return out

    @staticmethod
    def _loose_json(text: Any) -> dict[str, Any]:
        try:
            value = json.loads(text) if text else {}
        except (TypeError, ValueError, RecursionError):
            return {}
        return value if isinstance(value, dict) else {}

    def metric_names(self, methods: list[str]) -> list[dict[str, Any]]:
        """``(metric, method, dataset, model, n)`` of the scores stored for ``methods``.

        What the report compares with an experiment's metric list, to name stored scores the
        list lacks (databases written before reruns added to the list).
        """
        if not methods:
            return []
        marks = ", ".join("?" for _ in methods)
        q = (
            "SELECT s.metric, e.method, e.dataset, e.model, COUNT(*) AS n FROM scores s "
            f"JOIN explanations e ON e.id = s.explanation_id WHERE e.method IN ({marks}) "
            "GROUP BY s.metric, e.method, e.dataset, e.model ORDER BY MIN(s.rowid)"
        )
        return [dict(r) for r in self._sql(q, tuple(methods)).fetchall()]

    def experiments(self) -> list[dict[str, Any]]:
        rows = self._sql("SELECT * FROM experiments ORDER BY updated").fetchall()
        out = []
        for r in rows:
            d = dict(r)
            where = f"experiment {_clip(d['name'], 60)!r}"
            for key in ("methods", "metrics", "args"):
                d[key] = self._json(d[key], f"{where} column {key}")
            if not all(
                isinstance(d[k], list) and all(isinstance(x, str) for x in d[k])
                for k in ("methods", "metrics")
            ):
                raise StorageError(
                    f"{_clip(self.path, 300)}: {where} has methods/metrics that are not lists of names.",
                    "The database was damaged or edited by hand; restore it or start a new one.",
                )
            out.append(d)
        return out

    # -- videos ----------------------------------------------------------------------------
    def has_video(self, dataset: str, item: str) -> bool:
        q = "SELECT 1 FROM videos WHERE dataset = ? AND item = ?"
        return self._sql(q, (dataset, item)).fetchone() is not None

    def put_video(
        self,
        dataset: str,
        item: str,
        video: torch.Tensor,
        label: int | None,
        source: dict[str, Any],
        evidence: torch.Tensor | None = None,
        evidence_frames: list[int] | None = None,
    ) -> bool:
        """Store the clip as ``uint8`` (for reports) with its ground truth.

        Returns ``False`` (and writes nothing) if the clip is stored already.
        """
        v8 = (video.detach().cpu().clamp(0, 1) * 255).round().to(torch.uint8)
        cur = self._sql(
            "INSERT INTO videos (dataset, item, label, source, video, evidence, evidence_frames) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (dataset, item) DO NOTHING",
            (
                dataset,
                item,
                label,
                json.dumps(source),
                to_npy(v8),
                None if evidence is None else to_npy(evidence.bool()),
                None if evidence_frames is None else json.dumps([int(f) for f in evidence_frames]),
            ),
        )
        return cur.rowcount > 0

    def video(self, dataset: str, item: str) -> dict[str, Any] | None:
        r = self._sql("SELECT * FROM videos WHERE dataset = ? AND item = ?", (dataset, item)).fetchone()
        if r is None:
            return None
        where = f"video {_clip(item, 60)!r}"
        return {
            "dataset": dataset,
            "item": item,
            "label": r["label"],
            "source": self._json(r["source"], f"{where} column source"),
            "video": torch.from_numpy(self._array(r["video"], f"{where} column video").copy()).float()
            / 255.0,
            "evidence": None
            if r["evidence"] is None
            else torch.from_numpy(self._array(r["evidence"], f"{where} column evidence").copy()),
            "evidence_frames": None
            if r["evidence_frames"] is None
            else self._json(r["evidence_frames"], f"{where} column evidence_frames"),
        }

    # -- explanations ------------------------------------------------------------------------
    def find_explanation(
        self, dataset: str, item: str, recipe_hash: str, model: str, seed: int
    ) -> int | None:
        """The id of the stored explanation with this key, or ``None``."""
        return self._explanation_id(dataset, item, recipe_hash, model, seed)

    def _explanation_id(self, dataset: str, item: str, recipe_hash: str, model: str, seed: int) -> int | None:
        r = self._sql(
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
    ) -> tuple[int, bool]:
        """Store an explanation unless one with the same key is stored already.

        Returns
        -------
        id : int
            The stored explanation's id (another run's if it stored this key first).
        inserted : bool
            ``False`` if another run had stored it: this one was not written.
        """
        meta = attribution.meta
        keep = {k: meta[k] for k in META_KEYS if k in meta}
        cur = self._sql(
            "INSERT INTO explanations (dataset, item, method, recipe_hash, model, seed, recipe, target, "
            'plan_digest, n_forward, time_s, "values", lower_is_important, meta, run_id, created) '
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (dataset, item, recipe_hash, model, seed) DO NOTHING",
            (
                dataset,
                item,
                method,
                recipe_hash,
                model,
                seed,
                json.dumps(recipe),
                int(attribution.target),
                meta.get("plan_digest"),
                int(meta.get("n_forward", 0)),
                float(meta.get("timings", {}).get("total", 0.0)),
                to_npy(attribution.values.float()),
                int(attribution.lower_is_important),
                json.dumps(keep, default=str),
                run_id,
                time.time(),
            ),
        )
        if cur.rowcount > 0:
            return int(cur.lastrowid or 0), True
        eid = self._explanation_id(dataset, item, recipe_hash, model, seed)
        if eid is None:  # pragma: no cover - a conflict means the row exists
            raise StorageError(
                f"{_clip(self.path, 300)}: explanation {_clip(item, 60)!r} conflicted but is not stored."
            )
        return eid, False

    def attribution(self, explanation_id: int) -> Attribution:
        """The stored attribution (values, target, recipe and orientation; no feature space)."""
        r = self._sql("SELECT * FROM explanations WHERE id = ?", (explanation_id,)).fetchone()
        if r is None:
            raise StorageError(f"No explanation {explanation_id} in {_clip(self.path, 300)}.")
        where = f"explanation {explanation_id}"
        meta = self._json(r["meta"] or "{}", f"{where} column meta")
        if not isinstance(meta, dict):
            meta = {}
        meta.update(
            recipe=self._json(r["recipe"], f"{where} column recipe") if r["recipe"] else None,
            lower_is_important=bool(r["lower_is_important"]),
            plan_digest=r["plan_digest"],
            n_forward=r["n_forward"],
            method=r["method"],
        )
        values = torch.from_numpy(self._array(r["values"], f"{where} column values").copy())
        if values.dim() != 3:
            raise StorageError(
                f"{_clip(self.path, 300)}: {where} has values of shape {tuple(values.shape)}, "
                "expected [T, H, W].",
                "The database was damaged or edited by hand.",
            )
        return Attribution(values=values, target=int(r["target"]), meta=meta)

    def explanations(
        self, methods: list[str] | None = None, dataset: str | None = None
    ) -> list[dict[str, Any]]:
        q = (
            "SELECT id, dataset, item, method, recipe_hash, model, seed, target, plan_digest, n_forward, "
            "time_s, run_id, CASE WHEN json_valid(meta) THEN json_extract(meta, '$.n_backward') END AS n_backward FROM explanations"
        )
        rows = [dict(r) for r in self._sql(q + " ORDER BY id").fetchall()]
        if methods is not None:
            rows = [r for r in rows if r["method"] in methods]
        if dataset is not None:
            rows = [r for r in rows if r["dataset"] == dataset]
        return rows

    # -- scores ---------------------------------------------------------------------------------
    def has_score(self, explanation_id: int, metric_hash: str) -> bool:
        q = "SELECT 1 FROM scores WHERE explanation_id = ? AND metric_hash = ?"
        return self._sql(q, (explanation_id, metric_hash)).fetchone() is not None

    def put_score(
        self,
        explanation_id: int,
        metric: str,
        metric_hash: str,
        config: dict[str, Any],
        result: dict[str, Any],
        time_s: float,
        run_id: int,
    ) -> bool:
        """Store a score unless it is stored already; ``False`` if another run stored it first."""
        details = {k: v for k, v in result.items() if k != "value"}
        cur = self._sql(
            "INSERT INTO scores (explanation_id, metric, metric_hash, config, value, details, n_forward, time_s, "
            "run_id, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (explanation_id, metric_hash) DO NOTHING",
            (
                explanation_id,
                metric,
                metric_hash,
                json.dumps(config),
                float(result["value"]),
                json.dumps(details, default=str),
                int(result.get("n_forward", 0)),
                time_s,
                run_id,
                time.time(),
            ),
        )
        return cur.rowcount > 0

    def scores(self) -> list[dict[str, Any]]:
        """Every score joined with its explanation (``details`` parsed)."""
        q = (
            "SELECT s.explanation_id, s.metric, s.metric_hash, s.value, s.details, s.n_forward AS metric_n_forward, "
            "s.time_s AS metric_time_s, e.dataset, e.item, e.method, e.recipe_hash, e.model, e.seed, e.target, "
            "e.plan_digest, e.n_forward, e.time_s FROM scores s JOIN explanations e ON e.id = s.explanation_id "
            "ORDER BY e.id, s.metric"
        )
        out = []
        for r in self._sql(q).fetchall():
            d = dict(r)
            d["details"] = self._json(
                d["details"] or "{}", f"score {d['explanation_id']}/{_clip(d['metric'], 40)}"
            )
            if not isinstance(d["details"], dict):
                d["details"] = {}
            out.append(d)
        return out
