"""The sweep's result store: one SQLite database (``store.sqlite``) in the sweep folder.

The standard library's :mod:`sqlite3` in WAL mode with ``synchronous=FULL``: a finished cell
is one transaction (its row turns ``done`` and its measured values are inserted together),
so ``kill -9`` at any moment loses no finished cell and leaves a readable store. Only the
process that drives a sweep writes here; readers (``lab sweep status``, the dashboard) may
read while it runs.

Tables (schema :data:`SCHEMA_VERSION`):

* ``meta(name, value)``: the schema version, the sweep's name, the grid of the last run;
* ``cells(key, kind, label, axes, settings, deps, status, attempts, error, started,
  finished, seconds, worker, result)``: one row per cell ever planned in this folder;
  ``status`` is ``pending | running | done | failed``; ``axes``, ``settings``, ``deps`` and
  ``result`` are JSON;
* ``cell_values(cell, metric, eps, value)``: the numbers a finished cell measured, long
  format (``eps`` NULL where a metric has none), what tables and plots aggregate. Plain SQL
  works on it: ``SELECT metric, avg(value) FROM cell_values GROUP BY metric``.

A cell left ``running`` by a process that died is pending again for the next run (the
sweep's lock, :mod:`lab.experiments.lock`, says no other driver is alive).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.core.errors import LabError

SCHEMA_VERSION = 1
STORE_NAME = "store.sqlite"
STATUSES = ("pending", "running", "done", "failed")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cells (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    label TEXT NOT NULL,
    axes TEXT NOT NULL,
    settings TEXT NOT NULL,
    deps TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    started REAL,
    finished REAL,
    seconds REAL,
    worker TEXT,
    result TEXT
);
CREATE TABLE IF NOT EXISTS cell_values (
    cell TEXT NOT NULL REFERENCES cells(key),
    metric TEXT NOT NULL,
    eps REAL,
    value REAL
);
CREATE INDEX IF NOT EXISTS cell_values_cell ON cell_values(cell);
"""


@dataclass
class CellRow:
    """One row of ``cells``, JSON decoded."""

    key: str
    kind: str
    label: str
    axes: dict[str, Any]
    settings: dict[str, Any]
    deps: list[str]
    status: str
    attempts: int = 0
    error: str | None = None
    started: float | None = None
    finished: float | None = None
    seconds: float | None = None
    worker: str | None = None
    result: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Value:
    """One measured number: ``metric`` of ``cell`` (at radius ``eps``, or None)."""

    cell: str
    metric: str
    eps: float | None
    value: float | None


def _row(r: sqlite3.Row) -> CellRow:
    return CellRow(
        key=r["key"], kind=r["kind"], label=r["label"], axes=json.loads(r["axes"]),
        settings=json.loads(r["settings"]), deps=json.loads(r["deps"]), status=r["status"], attempts=r["attempts"],
        error=r["error"], started=r["started"], finished=r["finished"], seconds=r["seconds"], worker=r["worker"],
        result=json.loads(r["result"]) if r["result"] else {},
    )  # fmt: skip


class Store:
    """The SQLite store of the sweep in ``folder`` (``folder/store.sqlite``).

    ``Store(folder, create=True)`` makes the folder and the schema; without ``create`` a
    missing or foreign store is a :class:`LabError`. Use as a context manager or call
    :meth:`close`.
    """

    def __init__(self, folder: str | Path, *, create: bool = False) -> None:
        self.folder = Path(folder)
        self.path = self.folder / STORE_NAME
        if not self.path.is_file():
            if not create:
                raise LabError(f"{str(self.folder)!r} holds no sweep (no {STORE_NAME}); run `lab sweep run` first")
            self.folder.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute("PRAGMA foreign_keys=ON")
            if create:
                with self.transaction():
                    for stmt in _SCHEMA.strip().split(";"):
                        if stmt.strip():
                            self.db.execute(stmt)
                    self.db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            version = self.meta("schema_version")
        except sqlite3.DatabaseError as exc:
            raise LabError(f"{str(self.path)!r} is not a readable sweep store ({exc})") from None
        if version is None:
            raise LabError(f"{str(self.path)!r} is not a lab sweep store (no schema version)")
        if int(version) > SCHEMA_VERSION:
            raise LabError(f"{str(self.path)!r} has store schema {version}; this lab reads up to {SCHEMA_VERSION}: "
                           "upgrade the lab")  # fmt: skip

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` .. ``COMMIT`` (``ROLLBACK`` on an exception)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # ------------------------------------------------------------------ meta
    def meta(self, name: str) -> str | None:
        r = self.db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return None if r is None else str(r["value"])

    def set_meta(self, values: Mapping[str, Any]) -> None:
        with self.transaction() as db:
            for k, v in values.items():
                db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (k, v if isinstance(v, str) else json.dumps(v)))

    # ------------------------------------------------------------------ cells
    def add_cells(self, cells: Iterable[Mapping[str, Any]]) -> int:
        """Plan cells (``key, kind, label, axes, settings, deps``); a key already in the store
        keeps its row (its status and results). Returns how many were new."""
        new = 0
        with self.transaction() as db:
            for c in cells:
                cur = db.execute(
                    "INSERT OR IGNORE INTO cells (key, kind, label, axes, settings, deps) VALUES (?, ?, ?, ?, ?, ?)",
                    (c["key"], c["kind"], c["label"], json.dumps(c["axes"], sort_keys=True),
                     json.dumps(c["settings"], sort_keys=True), json.dumps(list(c["deps"]))),
                )  # fmt: skip
                new += cur.rowcount
                # the label and axes describe the cell in the current grid (names may change)
                db.execute("UPDATE cells SET label = ?, axes = ? WHERE key = ?",
                           (c["label"], json.dumps(c["axes"], sort_keys=True), c["key"]))  # fmt: skip
        return new

    def cells(self, keys: Sequence[str] | None = None) -> list[CellRow]:
        """Every cell (planning order), or those of ``keys`` in that order."""
        rows = [_row(r) for r in self.db.execute("SELECT * FROM cells ORDER BY rowid")]
        if keys is None:
            return rows
        by_key = {r.key: r for r in rows}
        return [by_key[k] for k in keys if k in by_key]

    def cell(self, key: str) -> CellRow | None:
        r = self.db.execute("SELECT * FROM cells WHERE key = ?", (key,)).fetchone()
        return None if r is None else _row(r)

    def mark_running(self, key: str, worker: str) -> None:
        with self.transaction() as db:
            db.execute("UPDATE cells SET status = 'running', started = ?, worker = ?, attempts = attempts + 1, "
                       "error = NULL WHERE key = ?", (time.time(), worker, key))  # fmt: skip

    def finish(self, key: str, result: Mapping[str, Any], values: Iterable[tuple[str, float | None, float | None]],
               seconds: float) -> None:  # fmt: skip
        """One transaction: the cell is done with ``result`` and its ``(metric, eps, value)`` rows."""
        with self.transaction() as db:
            db.execute("DELETE FROM cell_values WHERE cell = ?", (key,))
            db.executemany("INSERT INTO cell_values VALUES (?, ?, ?, ?)",
                           [(key, m, e, v) for m, e, v in values])  # fmt: skip
            db.execute("UPDATE cells SET status = 'done', finished = ?, seconds = ?, result = ?, error = NULL "
                       "WHERE key = ?", (time.time(), seconds, json.dumps(result, sort_keys=True), key))  # fmt: skip

    def fail(self, key: str, error: str, seconds: float) -> None:
        with self.transaction() as db:
            db.execute("UPDATE cells SET status = 'failed', finished = ?, seconds = ?, error = ? WHERE key = ?",
                       (time.time(), seconds, error, key))  # fmt: skip

    def reset_interrupted(self) -> int:
        """Cells a dead driver left ``running`` become ``pending``; returns how many."""
        with self.transaction() as db:
            return db.execute("UPDATE cells SET status = 'pending' WHERE status = 'running'").rowcount

    def retry_failed(self, keys: Sequence[str]) -> int:
        """``failed`` cells among ``keys`` become ``pending``; returns how many."""
        with self.transaction() as db:
            n = 0
            for k in keys:
                n += db.execute("UPDATE cells SET status = 'pending' WHERE key = ? AND status = 'failed'", (k,)).rowcount
            return n

    def values(self, keys: Sequence[str] | None = None) -> list[Value]:
        rows = self.db.execute("SELECT cell, metric, eps, value FROM cell_values ORDER BY rowid").fetchall()
        wanted = None if keys is None else set(keys)
        return [Value(r["cell"], r["metric"], r["eps"], r["value"]) for r in rows if wanted is None or r["cell"] in wanted]
