"""The Experiments page's plain helpers (no Streamlit): the sweep folders under a root, a
key that changes whenever a sweep's store does, when the page refreshes, the values a
table can be pinned to, and the per-cell list.

Everything is read from :func:`lab.experiments.sweep.sweep_status` and
:func:`lab.experiments.tables.records`; nothing about a sweep is recomputed here.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from lab.experiments.store import STORE_NAME
from lab.experiments.sweep import SweepStatus, cell_dir

#: seconds between refreshes of the page while a driver runs cells of the sweep
REFRESH_S = 3.0
#: ... and while cells wait with no driver (so a `lab sweep run` started later is noticed)
IDLE_REFRESH_S = 15.0
#: the where-filter's choice that pins nothing
ANY = "(any)"


def find_sweeps(root: str | os.PathLike[str]) -> list[Path]:
    """The sweep folders (holding a ``store.sqlite``) in ``root`` by name, after ``root``
    itself when it is one. Empty when ``root`` does not exist."""
    base = Path(root)
    if not base.is_dir():
        return []
    found = [base] if (base / STORE_NAME).is_file() else []
    return found + [p for p in sorted(base.iterdir()) if p.is_dir() and (p / STORE_NAME).is_file()]


def latest(folders: Sequence[Path]) -> int:
    """The index of the sweep whose store was written last (0 for none): the page's default."""
    return max(range(len(folders)), key=lambda i: _written(folders[i]), default=0)


def _written(folder: Path) -> int:
    """When the store last changed (its WAL file takes the writes), in ns."""
    times = [0]
    for name in (STORE_NAME, STORE_NAME + "-wal"):
        try:
            times.append((folder / name).stat().st_mtime_ns)
        except OSError:
            pass
    return max(times)


def store_key(folder: str | os.PathLike[str]) -> str:
    """``path|mtime|size`` of the store and of its WAL file: changes with every committed cell,
    so cached figures are drawn again exactly when the sweep moved on."""
    parts = [str(Path(folder).resolve())]
    for name in (STORE_NAME, STORE_NAME + "-wal"):
        try:
            s = (Path(folder) / name).stat()
            parts.append(f"{s.st_mtime_ns}:{s.st_size}")
        except OSError:
            parts.append("-")
    return "|".join(parts)


def blocked(st: SweepStatus) -> set[str]:
    """The pending cells that wait on a failed cell (directly or through another): they run
    only after ``lab sweep run --retry-failed``."""
    status = {c.key: c.status for c in st.cells}
    out: set[str] = set()
    for c in st.cells:  # planning order: a cell comes after what it needs
        if c.status == "pending" and any(status.get(d) == "failed" or d in out for d in c.deps):
            out.add(c.key)
    return out


def is_live(st: SweepStatus) -> bool:
    """Whether the sweep may still change: a cell is running, or pending and not waiting on
    a failed one."""
    return bool(st.counts.get("running")) or st.counts.get("pending", 0) > len(blocked(st))


def refresh_every(st: SweepStatus | None) -> float | None:
    """The page's refresh period: :data:`REFRESH_S` while a driver works on a live sweep,
    :data:`IDLE_REFRESH_S` while cells wait but no driver runs (to notice one starting), else None."""
    if st is None or not is_live(st):
        return None
    return REFRESH_S if st.driver_pid is not None else IDLE_REFRESH_S


def duration(seconds: float | None) -> str:
    """``42 s``, ``3.5 min``, ``1.2 h``; ``unknown`` for None."""
    if seconds is None:
        return "unknown"
    s = float(seconds)
    if s < 120:
        return f"{s:.0f} s"
    return f"{s / 60:.1f} min" if s < 7200 else f"{s / 3600:.1f} h"


def where_choices(recs: Iterable[Mapping[str, Any]], metric: str, axes: Sequence[str]) -> dict[str, list[str]]:
    """Per axis of ``axes``, the values (as text, sorted) the values of ``metric`` take in it,
    for the axes where they take more than one: the ones a table may need pinned."""
    seen: dict[str, dict[str, Any]] = {a: {} for a in axes}
    for r in recs:
        if r.get("metric") != metric:
            continue
        for a in axes:
            v = r.get(a)
            if v is not None:
                seen[a].setdefault(str(v), v)
    out = {}
    for a, values in seen.items():
        if len(values) > 1:
            out[a] = [k for k, _ in sorted(values.items(), key=lambda kv: _order(kv[1]))]
    return out


def _order(v: Any) -> tuple[int, Any]:
    return (0, v) if isinstance(v, (int, float)) and not isinstance(v, bool) else (1, str(v))


def pinned(choices: Mapping[str, str]) -> dict[str, str]:
    """The where-filter's selections without those that pin nothing."""
    return {a: v for a, v in choices.items() if v != ANY}


def kind_metrics(recs: Iterable[Mapping[str, Any]], kind: str) -> list[str]:
    """The metrics cells of ``kind`` measured, in first-seen order."""
    return list(dict.fromkeys(str(r["metric"]) for r in recs if r.get("kind") == kind))


def cell_table(st: SweepStatus, folder: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """One row per cell of the grid: status, kind, label, seconds, attempts, error, key and
    the folder of its files (``cells/<key>``, once it finished)."""
    rows = []
    for c in st.cells:
        where = cell_dir(Path(folder), c.key)
        rows.append({"status": c.status, "kind": c.kind, "cell": c.label,
                     "seconds": None if c.seconds is None else round(float(c.seconds), 1), "attempts": c.attempts,
                     "error": c.error or "", "key": c.key,
                     "files": str(where) if where.is_dir() else ""})  # fmt: skip
    return rows


def cell_files(folder: str | os.PathLike[str], key: str) -> list[tuple[str, int]]:
    """(name, bytes) of the files a cell wrote (``cells/<key>/``); empty before it finished."""
    where = cell_dir(Path(folder), key)
    if not where.is_dir():
        return []
    return [(p.name, p.stat().st_size) for p in sorted(where.iterdir()) if p.is_file()]


def cell_traceback(folder: str | os.PathLike[str], key: str) -> str:
    """The traceback a failed cell left (``cells/<key>.partial/error.txt``); empty when none."""
    path = cell_dir(Path(folder), key).with_name(f"{key}.partial") / "error.txt"
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
