"""Tables from a sweep's store: one metric, any two axes as rows and columns, mean and
standard deviation over seeds.

Every number in a store is a ``(cell, metric, eps, value)`` row; a cell's axes (model,
seed, arch, dataset, defense, denoiser, eval, norm, method) plus the value's ``eps`` are
the axes a table can group by. Values that share the row and the column are aggregated over
``seed`` (the sample standard deviation, ``ddof=1``; 0 for one seed). Values that also
differ in another axis would be averaged into one number that means nothing, so
:func:`sweep_table` refuses them and names the axis to pin with ``where``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.core.errors import LabError
from lab.experiments.store import Store
from lab.experiments.sweep import grid_keys

AXES = ("model", "seed", "arch", "dataset", "defense", "denoiser", "eval", "norm", "method", "eps", "kind")


@dataclass(frozen=True)
class Stat:
    """The mean and standard deviation of ``n`` values (over seeds), and the values."""

    mean: float | None
    std: float | None
    n: int
    values: tuple[float, ...] = ()


def stat(values: Sequence[float | None]) -> Stat:
    """:class:`Stat` of the finite values (``mean``/``std`` None when there is none)."""
    vs = tuple(float(v) for v in values if v is not None and math.isfinite(float(v)))
    if not vs:
        return Stat(None, None, 0)
    mean = sum(vs) / len(vs)
    std = math.sqrt(sum((v - mean) ** 2 for v in vs) / (len(vs) - 1)) if len(vs) > 1 else 0.0
    return Stat(mean, std, len(vs), vs)


@dataclass
class SweepTable:
    """``cells[(row, col)]``: the :class:`Stat` of ``metric`` there (its values in seed order);
    labels in the grid's order (radii and seeds sorted), whatever order the cells finished in."""

    metric: str
    rows: str
    cols: str
    row_labels: list[Any]
    col_labels: list[Any]
    cells: dict[tuple[Any, Any], Stat]
    where: dict[str, str] = field(default_factory=dict)
    over: str = "seed"
    #: what the numbers must be read with: evaluations whose gradient-masking checks failed,
    #: robust accuracies from weak attacks only (upper bounds)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric, "rows": self.rows, "cols": self.cols, "where": self.where, "over": self.over,
            "row_labels": self.row_labels, "col_labels": self.col_labels, "warnings": self.warnings,
            "cells": [{self.rows: r, self.cols: c, "mean": s.mean, "std": s.std, "n": s.n, "values": list(s.values)}
                      for (r, c), s in self.cells.items()],
        }  # fmt: skip


def records(folder: str | os.PathLike[str], *, all_cells: bool = False) -> list[dict[str, Any]]:
    """Every value of the sweep's finished cells as a flat dict: the cell's axes, ``eps``,
    ``kind``, ``metric``, ``value``, ``cell`` and ``label``. Only the grid last run, unless
    ``all_cells``."""
    with Store(Path(folder)) as store:
        keys = None if all_cells else grid_keys(store)
        rows = {r.key: r for r in store.cells(keys) if r.status == "done"}
        values = store.values(list(rows))
    per_cell: dict[str, list[Any]] = {}
    for v in values:
        per_cell.setdefault(v.cell, []).append(v)
    out = []
    for key, cell in rows.items():  # the grid's order, not the order the cells finished in
        for v in per_cell.get(key, []):
            out.append({**cell.axes, "kind": cell.kind, "eps": v.eps, "metric": v.metric, "value": v.value,
                        "cell": v.cell, "label": cell.label})  # fmt: skip
    return out


def metrics(folder: str | os.PathLike[str]) -> list[str]:
    """The metrics the sweep's finished cells measured, in first-seen order."""
    return list(dict.fromkeys(r["metric"] for r in records(folder)))


def _matches(rec: Mapping[str, Any], where: Mapping[str, str]) -> bool:
    for k, want in where.items():
        have = rec.get(k)
        if have is None or str(have) != str(want):
            try:
                if have is not None and abs(float(have) - float(want)) < 1e-9:
                    continue
            except ValueError:
                pass
            return False
    return True


def _sort_key(v: Any) -> tuple[int, Any]:
    return (0, v) if isinstance(v, (int, float)) else (1, str(v))


def sweep_table(folder: str | os.PathLike[str], metric: str = "robust_accuracy", *, rows: str = "model",
                cols: str = "eps", where: Mapping[str, str] | None = None) -> SweepTable:  # fmt: skip
    """``metric`` with ``rows`` x ``cols`` (two of :data:`AXES`), over seeds, of the values
    matching ``where`` (axis -> value). LabError for an unknown axis or metric, or when the
    values of one table cell differ in an axis other than the seed."""
    where = dict(where or {})
    for a in (rows, cols, *where):
        if a not in AXES:
            raise LabError(f"unknown axis {a!r}; the axes are: {', '.join(AXES)}")
    if rows == cols:
        raise LabError(f"rows and columns must be two different axes (both are {rows!r})")
    recs = records(folder)
    known = list(dict.fromkeys(r["metric"] for r in recs))
    if metric not in known:
        raise LabError(f"no finished cell measured {metric!r}; measured: {', '.join(known) or 'nothing yet'}")
    chosen = [r for r in recs if r["metric"] == metric and _matches(r, where)]
    if not chosen:
        raise LabError(f"no value of {metric!r} matches {where}")
    groups: dict[tuple[Any, Any], list[dict[str, Any]]] = {}
    for r in chosen:
        groups.setdefault((r.get(rows), r.get(cols)), []).append(r)
    others = [a for a in AXES if a not in (rows, cols, "seed")]
    for (rv, cv), members in groups.items():
        for a in others:
            seen = {str(m.get(a)) for m in members}
            if len(seen) > 1:
                raise LabError(f"the {rows}={rv}, {cols}={cv} cell of the table mixes values that differ in {a} "
                               f"({', '.join(sorted(seen))}): choose one with --where {a}=VALUE, or make {a} the "
                               "rows or the columns")  # fmt: skip
        seeds = [m.get("seed") for m in members]
        if len(set(seeds)) < len(seeds):
            raise LabError(f"the {rows}={rv}, {cols}={cv} cell of the table has several values per seed; "
                           "pin the other axes with --where")  # fmt: skip
    row_labels = list(dict.fromkeys(r.get(rows) for r in chosen))
    col_labels = list(dict.fromkeys(r.get(cols) for r in chosen))
    for labels, axis in ((row_labels, rows), (col_labels, cols)):
        if axis in ("eps", "seed"):
            labels.sort(key=_sort_key)
    order = {k: (row_labels.index(k[0]), col_labels.index(k[1])) for k in groups}
    cells = {k: stat([m["value"] for m in sorted(groups[k], key=lambda m: _sort_key(m.get("seed")))])
             for k in sorted(groups, key=lambda k: order[k])}  # fmt: skip
    return SweepTable(metric=metric, rows=rows, cols=cols, row_labels=row_labels, col_labels=col_labels, cells=cells,
                      where=where, warnings=_warnings(recs, {r["cell"] for r in chosen}))  # fmt: skip


def _warnings(recs: Sequence[Mapping[str, Any]], cells: set[str]) -> list[str]:
    """The evaluation cells among ``cells`` whose checks failed, or whose attacks were all weak."""
    flags: dict[str, list[str]] = {"masking_failed": [], "upper_bound_only": []}
    for r in recs:
        if r["cell"] in cells and r["metric"] in flags and r["value"]:
            flags[r["metric"]].append(r["label"])
    out = []
    if flags["masking_failed"]:
        out.append(f"gradient-masking checks FAILED in {len(flags['masking_failed'])} evaluation(s) "
                   f"({', '.join(flags['masking_failed'])}): their robust accuracies are not trustworthy; see each "
                   "cell's report.json")  # fmt: skip
    if flags["upper_bound_only"]:
        out.append(f"{len(flags['upper_bound_only'])} evaluation(s) ran weak attacks only (an upper bound; run the "
                   "standard or autoattack suite)")  # fmt: skip
    return out


def series(folder: str | os.PathLike[str], metric: str, *, by: str = "model", x: str = "eps",
           where: Mapping[str, str] | None = None) -> dict[Any, list[tuple[Any, Stat]]]:  # fmt: skip
    """Per value of ``by``, the points ``(x, Stat)`` of ``metric`` (the plots' data)."""
    table = sweep_table(folder, metric, rows=by, cols=x, where=where)
    return {r: [(c, table.cells[(r, c)]) for c in table.col_labels if (r, c) in table.cells] for r in table.row_labels}
