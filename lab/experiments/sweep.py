"""The sweep driver: plan the cells, skip the finished ones, run the rest, record each in the store.

``run_sweep(load_spec("configs/sweeps/mnist_tradeoff.toml"), "sweeps/mnist_tradeoff")`` is
what ``lab sweep run`` calls. The sweep folder holds ``store.sqlite``
(:mod:`lab.experiments.store`), ``sweep.toml`` (the grid last run), and ``cells/<key>/``,
each cell's files. A cell is computed in ``cells/<key>.partial/`` and renamed to
``cells/<key>/`` when it finished; then its row turns ``done`` in one transaction. So:

* ``kill -9`` at any moment loses no finished cell, and the store stays readable;
* running the same command again skips what is done and continues: a cell that was
  running is run again (a training from its last finished epoch); a grid that grew keeps
  every old cell; a failed cell is recorded with its error and retried only with
  ``retry_failed=True``; cells that depend on a failed one wait;
* one driver at a time: a lock on ``.lock`` in the folder (``fcntl.flock``, released by the
  kernel when the driver dies).
"""

from __future__ import annotations

import concurrent.futures as cf
import fcntl
import json
import logging
import os
import shutil
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.core.errors import LabError
from lab.core.io import atomic_write_bytes, fsync_dir
from lab.core.progress import progress as progress_bar
from lab.experiments.cells import Outcome, model_folder
from lab.experiments.engines import InProcess
from lab.experiments.graph import plan
from lab.experiments.spec import Cell, SweepSpec
from lab.experiments.store import CellRow, Store

log = logging.getLogger(__name__)

Engine = InProcess  # the engines share InProcess's interface (where, submit, slots, close)


@dataclass
class SweepResult:
    """What one ``run_sweep`` did: the grid's keys and what became of them."""

    folder: Path
    keys: list[str]
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # done before
    failed: dict[str, str] = field(default_factory=dict)  # key -> error
    blocked: list[str] = field(default_factory=list)  # waiting on a failed cell
    seconds: float = 0.0


def cell_dir(folder: Path, key: str) -> Path:
    return folder / "cells" / key


@contextmanager
def sweep_lock(folder: Path) -> Iterator[None]:
    """Hold the sweep folder's lock, or LabError when another driver holds it."""
    folder.mkdir(parents=True, exist_ok=True)
    fh = open(folder / ".lock", "a+")
    try:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            pid = fh.read().strip() or "?"
            raise LabError(f"another `lab sweep run` (pid {pid}) is working on {str(folder)!r}; wait for it or stop it"
                           ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        yield
        fh.seek(0)
        fh.truncate()  # no driver now
        fh.flush()
    finally:
        fh.close()


def _spec_text(spec: SweepSpec) -> str:
    return spec.path.read_text(encoding="utf-8") if spec.path is not None and spec.path.is_file() else ""


def run_sweep(
    spec: SweepSpec,
    folder: str | os.PathLike[str],
    *,
    engine: Engine | None = None,
    retry_failed: bool = False,
    progress: bool = True,
    max_cells: int | None = None,
    on_event: Callable[[str, CellRow | Cell], None] | None = None,
) -> SweepResult:
    """Run every cell of ``spec`` not yet done in the store of ``folder`` on ``engine``
    (default: :class:`lab.experiments.engines.InProcess`). ``max_cells``: stop after that
    many cells ran (tests, and a user who wants a taste). Returns a :class:`SweepResult`."""
    out = Path(folder)
    t0 = time.perf_counter()
    cells = plan(spec)  # a bad recipe or run: before anything is written
    engine = engine or InProcess(progress=progress, data_dir=spec.data_dir)
    with sweep_lock(out), Store(out, create=True) as store:
        store.add_cells(c.to_dict() for c in cells)
        keys = [c.key for c in cells]
        store.set_meta({"name": spec.name, "grid": keys, "spec_path": str(spec.path or "")})
        atomic_write_bytes(out / "sweep.toml", _spec_text(spec).encode())
        interrupted = store.reset_interrupted()
        if interrupted:
            log.info("%d cell(s) were running when the last driver stopped: running them again", interrupted)
        if retry_failed:
            store.retry_failed(keys)
        try:
            return _drive(store, out, cells, engine, progress, max_cells, on_event, t0)
        finally:
            engine.close()


def _drive(store: Store, out: Path, cells: list[Cell], engine: Engine, progress: bool, max_cells: int | None,
           on_event: Callable[[str, Any], None] | None, t0: float) -> SweepResult:  # fmt: skip
    rows = {r.key: r for r in store.cells([c.key for c in cells])}
    by_key = {c.key: c for c in cells}
    result = SweepResult(folder=out, keys=list(by_key))
    status = {k: rows[k].status for k in by_key}
    result.skipped = [k for k, s in status.items() if s == "done"]
    todo = [k for k, s in status.items() if s == "pending"]
    failed_before = {k: rows[k].error or "" for k, s in status.items() if s == "failed"}
    running: dict[cf.Future[Outcome], tuple[str, float]] = {}
    bar = progress_bar(total=len(by_key), initial=len(result.skipped), desc="sweep", unit="cell", enabled=progress,
                       lines="update", leave=True)
    started = 0
    try:
        while todo or running:
            for key in list(todo):
                if len(running) >= engine.slots or (max_cells is not None and started >= max_cells):
                    break
                deps = by_key[key].deps
                if any(status[d] in ("failed", "blocked") for d in deps):
                    todo.remove(key)
                    status[key] = "blocked"
                    result.blocked.append(key)
                    continue
                if not all(status[d] == "done" for d in deps):
                    continue
                todo.remove(key)
                status[key] = "running"
                started += 1
                cell = by_key[key]
                store.mark_running(key, engine.name)
                if on_event:
                    on_event("start", cell)
                bar.set_postfix_str(cell.label, refresh=True)
                dep_dirs = {d: model_folder(by_key[d].to_dict(), cell_dir(out, d)) for d in deps}
                work = _work_dir(out, key)
                running[engine.submit(cell.to_dict(), engine.where(work, dep_dirs))] = (key, time.perf_counter())
            if not running:
                if max_cells is not None and started >= max_cells:
                    break
                continue  # everything left is blocked: the next pass records it
            done, _ = cf.wait(list(running), return_when=cf.FIRST_COMPLETED)
            for fut in done:
                key, t_start = running.pop(fut)
                status[key] = _finish(store, out, by_key[key], fut, time.perf_counter() - t_start, result)
                if on_event:
                    on_event(status[key], by_key[key])
                bar.set_postfix_str(f"{status[key]} {by_key[key].label}", refresh=False)
                bar.update(1)
    finally:
        bar.close()
    for k, err in failed_before.items():
        result.failed.setdefault(k, err)
    result.seconds = round(time.perf_counter() - t0, 3)
    return result


def _work_dir(out: Path, key: str) -> Path:
    """``cells/<key>.partial``; a final folder of a cell not recorded done (a driver killed
    between the rename and the commit) moves back, so a training resumes from it."""
    work = cell_dir(out, key).with_name(f"{key}.partial")
    final = cell_dir(out, key)
    if final.exists() and not work.exists():
        os.replace(final, work)
    elif final.exists():
        shutil.rmtree(final)
    work.mkdir(parents=True, exist_ok=True)
    return work


def _finish(store: Store, out: Path, cell: Cell, fut: cf.Future[Outcome], seconds: float,
            result: SweepResult) -> str:  # fmt: skip
    work = cell_dir(out, cell.key).with_name(f"{cell.key}.partial")
    try:
        outcome = fut.result()
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:
        error = f"{type(exc).__name__}: {exc}" if not isinstance(exc, LabError) else str(exc)
        (work / "error.txt").write_text("".join(traceback.format_exception(exc)), encoding="utf-8")
        store.fail(cell.key, error, round(seconds, 3))
        log.warning("cell %s failed: %s", cell.label, error)
        result.failed[cell.key] = error
        return "failed"
    final = cell_dir(out, cell.key)
    os.replace(work, final)
    fsync_dir(final.parent)
    store.finish(cell.key, outcome.result, outcome.values, outcome.seconds)
    result.ran.append(cell.key)
    return "done"


# ---------------------------------------------------------------- status
@dataclass
class SweepStatus:
    """The grid's cells by status, the time they took, and an estimate of what is left."""

    name: str
    cells: list[CellRow]
    counts: dict[str, int]
    seconds_done: float
    estimate_left: float | None
    others: int = 0  # cells of earlier grids kept in the store
    driver_pid: int | None = None  # the `lab sweep run` working on it now, or None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "counts": self.counts, "seconds_done": self.seconds_done, "driver_pid": self.driver_pid,
                "estimate_left_s": self.estimate_left, "cells_of_earlier_grids": self.others,
                "cells": [{"key": c.key, "kind": c.kind, "label": c.label, "status": c.status, "seconds": c.seconds,
                           "error": c.error, "attempts": c.attempts} for c in self.cells]}  # fmt: skip


def grid_keys(store: Store) -> list[str]:
    """The keys of the grid the store last ran (every cell when it recorded none)."""
    text = store.meta("grid")
    return json.loads(text) if text else [c.key for c in store.cells()]


def driver_pid(folder: str | os.PathLike[str]) -> int | None:
    """The pid of the live driver of the sweep in ``folder`` (the one the lock file names,
    if that process is alive), or None."""
    try:
        text = (Path(folder) / ".lock").read_text().strip()
        pid = int(text)
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # alive, another user's
        return pid
    return pid


def sweep_status(folder: str | os.PathLike[str]) -> SweepStatus:
    """The status of the sweep in ``folder`` (LabError when there is none)."""
    with Store(Path(folder)) as store:
        keys = grid_keys(store)
        rows = store.cells(keys)
        total = len(store.cells())
        name = store.meta("name") or Path(folder).name
    counts = {s: sum(r.status == s for r in rows) for s in ("done", "running", "failed", "pending")}
    done = [r for r in rows if r.status == "done"]
    seconds_done = sum(r.seconds or 0.0 for r in done)
    # a cell is estimated from the finished cells of its kind and model (other seeds), else of its kind
    per_model: dict[tuple[str, str], list[float]] = {}
    per_kind: dict[str, list[float]] = {}
    for r in done:
        per_model.setdefault((r.kind, str(r.axes.get("model"))), []).append(r.seconds or 0.0)
        per_kind.setdefault(r.kind, []).append(r.seconds or 0.0)
    overall = seconds_done / len(done) if done else None
    left = 0.0
    known = True
    now = time.time()
    for r in rows:
        if r.status not in ("pending", "running"):
            continue
        times = per_model.get((r.kind, str(r.axes.get("model")))) or per_kind.get(r.kind)
        mean = sum(times) / len(times) if times else overall
        if mean is None:
            known = False
            continue
        left += max(0.0, mean - (now - r.started)) if r.status == "running" and r.started else mean
    return SweepStatus(name=name, cells=rows, counts=counts, seconds_done=round(seconds_done, 1),
                       estimate_left=round(left, 1) if known else None, others=total - len(rows),
                       driver_pid=driver_pid(folder))  # fmt: skip
