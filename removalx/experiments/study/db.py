"""The study tables of an experiment database (docs/study.md).

A study lives in the same SQLite file as the explanations it shows, in four tables of its
own (the experiment tables are untouched):

* ``studies`` -- name, seed of the rater orders, the question, the creating command's arguments;
* ``study_items`` -- one row per rated item (video x method x model): an opaque random id, the
  explanation it shows, and its media rendered once (the clip and the overlay side by side as
  a GIF, the colour-map legend as a PNG);
* ``study_raters`` -- rater ids with their random invite tokens and when they finished;
* ``study_answers`` -- one answer per rater and item (``-2 .. +2``), written at once and
  changeable until the rater finishes.

All writes are single statements or one transaction, so a killed server or command leaves the
study as it was before or after a change, never half of it.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from removalx.errors import StorageError, truncate
from removalx.experiments.store import immediate_transaction
from removalx.experiments.study import StudyError

__all__ = ["STUDY_SCHEMA", "StudyDB", "new_item_id", "new_token"]

STUDY_SCHEMA = """
CREATE TABLE IF NOT EXISTS studies (
    name TEXT PRIMARY KEY, seed INTEGER NOT NULL, question TEXT NOT NULL, args TEXT, created REAL);
CREATE TABLE IF NOT EXISTS study_items (
    study TEXT NOT NULL, id TEXT NOT NULL, position INTEGER NOT NULL, explanation_id INTEGER,
    dataset TEXT, item TEXT, method TEXT, model TEXT, class_name TEXT, media BLOB, legend BLOB,
    width INTEGER, height INTEGER, PRIMARY KEY (study, id), UNIQUE (study, position));
CREATE TABLE IF NOT EXISTS study_raters (
    study TEXT NOT NULL, rater TEXT NOT NULL, token TEXT NOT NULL UNIQUE, created REAL, finished REAL,
    PRIMARY KEY (study, rater));
CREATE TABLE IF NOT EXISTS study_answers (
    study TEXT NOT NULL, rater TEXT NOT NULL, item TEXT NOT NULL,
    score INTEGER NOT NULL CHECK (score BETWEEN -2 AND 2), created REAL, updated REAL,
    PRIMARY KEY (study, rater, item));
"""

_TABLES = ("studies", "study_items", "study_raters", "study_answers")


def new_token() -> str:
    """A random rater token (128 bits, URL-safe)."""
    return secrets.token_urlsafe(16)


def new_item_id() -> str:
    """A random opaque item id (64 bits, hexadecimal): it tells nothing about the item."""
    return secrets.token_hex(8)


def _expected() -> dict[str, list[str]]:
    con = sqlite3.connect(":memory:")
    try:
        con.executescript(STUDY_SCHEMA)
        return {t: [r[1] for r in con.execute(f"PRAGMA table_info({t})")] for t in _TABLES}
    finally:
        con.close()


_COLUMNS = _expected()


class StudyDB:
    """The study tables of one experiment database (a thread-safe connection).

    Parameters
    ----------
    path : str or Path
        An experiment database (``removalx evaluate/compare/ablate --db``).
    read_only : bool
        Never write (``study results``, ``removalx report``); the study tables must exist.
    create : bool
        Create the experiment tables too when the file is new (``study create``).

    Raises
    ------
    StorageError
        The file is missing (read-only), not SQLite, not a removalx results database, or has
        study tables with other columns.
    """

    def __init__(self, path: str | Path, *, read_only: bool = False, create: bool = False) -> None:
        from removalx.experiments.store import Store

        self.path = Path(path)
        self.read_only = read_only
        Store(self.path, read_only=read_only or not create).close()  # validates (and creates) the file
        uri = f"{self.path.resolve().as_uri()}?mode={'ro' if read_only else 'rw'}"
        self.db = sqlite3.connect(uri, uri=True, timeout=60.0, isolation_level=None, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.lock = threading.RLock()
        try:
            if not read_only:
                self.db.execute("PRAGMA journal_mode=WAL")
                with self._transaction():
                    for statement in STUDY_SCHEMA.split(";"):
                        if statement.strip():
                            self.db.execute(statement)
            self._check_tables()
        except sqlite3.DatabaseError as exc:
            self.db.close()
            raise StorageError(
                f"{truncate(str(self.path), 300)}: cannot use its study tables ({truncate(str(exc), 200)}).",
                "Check the file; pass --db the experiment database the study was created in.",
            ) from exc
        except BaseException:
            self.db.close()
            raise

    def _check_tables(self) -> None:
        have = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        self.has_tables = all(t in have for t in _TABLES)
        for table in _TABLES:
            if table not in have:
                continue
            cols = {r[1] for r in self.db.execute(f"PRAGMA table_info({table})")}
            lack = [c for c in _COLUMNS[table] if c not in cols]
            if lack:
                raise StorageError(
                    f"{truncate(str(self.path), 300)}: table {table} lacks columns {', '.join(lack)}.",
                    "It was written by another program; use a new database for the study.",
                )

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        with self.lock, immediate_transaction(self.db):
            yield

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        if not self.has_tables:
            return []
        with self.lock:
            return self.db.execute(sql, tuple(params)).fetchall()

    # -- studies ------------------------------------------------------------------------------
    def names(self) -> list[str]:
        """Names of the studies in the database, oldest first."""
        return [r["name"] for r in self._rows("SELECT name FROM studies ORDER BY created, name")]

    def study(self, name: str) -> dict[str, Any]:
        """The study ``name`` (raises :class:`StudyError` listing the studies there are)."""
        rows = self._rows("SELECT * FROM studies WHERE name = ?", (name,))
        if not rows:
            names = self.names()
            raise StudyError(
                f"No study named {truncate(name, 60)!r} in {truncate(str(self.path), 200)} "
                f"(studies there: {truncate(', '.join(names), 200) if names else 'none'}).",
                "Create it with `removalx study create --db DB --name NAME`, or check --name.",
            )
        d = dict(rows[0])
        try:
            d["args"] = json.loads(d["args"] or "{}")
        except ValueError:
            d["args"] = {}
        return d

    def create_study(
        self,
        name: str,
        seed: int,
        question: str,
        args: dict[str, Any],
        items: list[dict[str, Any]],
        raters: Sequence[str],
    ) -> dict[str, str]:
        """Write a study, its items (with media) and raters in one transaction; ``{rater: token}``."""
        if self.has_tables and self._rows("SELECT 1 FROM studies WHERE name = ?", (name,)):
            raise StudyError(
                f"A study named {truncate(name, 60)!r} exists already in {truncate(str(self.path), 200)}.",
                "Choose another --name, or serve the existing one with `removalx study serve`.",
            )
        tokens = {r: new_token() for r in raters}
        now = time.time()
        with self._transaction():
            self.db.execute(
                "INSERT INTO studies (name, seed, question, args, created) VALUES (?, ?, ?, ?, ?)",
                (name, int(seed), question, json.dumps(args, default=str), now),
            )
            for pos, it in enumerate(items):
                self.db.execute(
                    "INSERT INTO study_items (study, id, position, explanation_id, dataset, item, method, "
                    "model, class_name, media, legend, width, height) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        name,
                        new_item_id(),
                        pos,
                        it["explanation_id"],
                        it["dataset"],
                        it["item"],
                        it["method"],
                        it["model"],
                        it["class_name"],
                        it["media"],
                        it["legend"],
                        it["width"],
                        it["height"],
                    ),
                )
            for rater, token in tokens.items():
                self.db.execute(
                    "INSERT INTO study_raters (study, rater, token, created) VALUES (?, ?, ?, ?)",
                    (name, rater, token, now),
                )
        return tokens

    # -- items -----------------------------------------------------------------------------------
    def items(self, name: str) -> list[dict[str, Any]]:
        """The study's items in their canonical order (``position``), without media."""
        q = (
            "SELECT id, position, explanation_id, dataset, item, method, model, class_name, width, height "
            "FROM study_items WHERE study = ? ORDER BY position"
        )
        return [dict(r) for r in self._rows(q, (name,))]

    def media(self, name: str, item_id: str, kind: str) -> bytes | None:
        """The GIF (``kind="media"``) or legend PNG (``kind="legend"``) of an item, or ``None``."""
        if kind not in ("media", "legend"):
            raise ValueError(kind)
        rows = self._rows(f"SELECT {kind} FROM study_items WHERE study = ? AND id = ?", (name, item_id))
        return None if not rows else bytes(rows[0][0])

    # -- raters ----------------------------------------------------------------------------------
    def raters(self, name: str) -> list[dict[str, Any]]:
        q = "SELECT rater, token, created, finished FROM study_raters WHERE study = ? ORDER BY created, rater"
        return [dict(r) for r in self._rows(q, (name,))]

    def rater_by_token(self, name: str, token: str) -> dict[str, Any] | None:
        rows = self._rows("SELECT * FROM study_raters WHERE study = ? AND token = ?", (name, token))
        if not rows or not secrets.compare_digest(str(rows[0]["token"]), token):
            return None
        return dict(rows[0])

    def add_rater(self, name: str, rater: str) -> str:
        """The token of ``rater`` (a new rater gets a new random token)."""
        with self._transaction():
            row = self.db.execute(
                "SELECT token FROM study_raters WHERE study = ? AND rater = ?", (name, rater)
            ).fetchone()
            if row is not None:
                return str(row["token"])
            token = new_token()
            self.db.execute(
                "INSERT INTO study_raters (study, rater, token, created) VALUES (?, ?, ?, ?)",
                (name, rater, token, time.time()),
            )
            return token

    def finish(self, name: str, rater: str) -> None:
        with self.lock:
            self.db.execute(
                "UPDATE study_raters SET finished = ? WHERE study = ? AND rater = ? AND finished IS NULL",
                (time.time(), name, rater),
            )

    # -- answers ---------------------------------------------------------------------------------
    def answers(self, name: str, rater: str | None = None) -> list[dict[str, Any]]:
        """Answers joined with their items: rater, item id, score, method, model, dataset, video."""
        q = (
            "SELECT a.rater, a.item AS item_id, a.score, a.updated, i.position, i.method, i.model, "
            "i.dataset, i.item AS video FROM study_answers a JOIN study_items i "
            "ON i.study = a.study AND i.id = a.item WHERE a.study = ?"
        )
        params: list[Any] = [name]
        if rater is not None:
            q += " AND a.rater = ?"
            params.append(rater)
        return [dict(r) for r in self._rows(q + " ORDER BY a.rater, i.position", params)]

    def put_answer(self, name: str, rater: str, item_id: str, score: int) -> None:
        """Store (or change) one answer; refused once the rater has finished."""
        with self._transaction():
            r = self.db.execute(
                "SELECT finished FROM study_raters WHERE study = ? AND rater = ?", (name, rater)
            ).fetchone()
            if r is None or r["finished"] is not None:
                raise StudyError("This rater has finished the study; answers can no longer change.")
            now = time.time()
            self.db.execute(
                "INSERT INTO study_answers (study, rater, item, score, created, updated) VALUES (?,?,?,?,?,?) "
                "ON CONFLICT (study, rater, item) DO UPDATE SET score = excluded.score, updated = excluded.updated",
                (name, rater, item_id, int(score), now, now),
            )
