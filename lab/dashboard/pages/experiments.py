"""Experiments: the sweeps ``lab sweep run`` wrote under the sweeps folder. For the sweep
picked: its status (cells done, running, failed and pending, the time so far, the estimate
left, the failed cells' errors), a table of any measured metric by any two axes (pinned with
where-filters), the four figures and the cells with their files.

Everything is read from the sweep's store through :mod:`lab.experiments` and drawn with
:mod:`lab.present.sweeps`; nothing is recomputed. While a cell is running or pending the
sweep's part of the page is a fragment that reruns every
:func:`~lab.dashboard.sweep_folders.refresh_every` seconds (3 while a driver works on it, 15
while cells wait without one); when the last cell finished the page
redraws once and stops refreshing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from lab.core.errors import LabError
from lab.dashboard import settings, sweep_cache, sweep_folders
from lab.dashboard.sweep_folders import ANY, duration
from lab.dashboard.ui import run_name, user_errors
from lab.experiments.store import CellRow
from lab.experiments.sweep import SweepStatus, cell_dir, sweep_status
from lab.experiments.tables import AXES, metrics, records, sweep_table
from lab.present import reports
from lab.present.sweeps import PLOTS, status_lines, table_text

KEY = "exp"
LIVE = f"{KEY}_live"
START = "lab sweep run configs/sweeps/mnist_tradeoff.toml"
FIGURES = dict(zip(PLOTS, ("Robust accuracy vs epsilon", "Clean vs robust", "Explanations", "Time per cell")))
#: where-filters a figure ignores: axes its values do not have (the evaluations' ``eval`` and
#: ``norm``, the explanations' ``method``), and those it draws along (``eps``, ``kind``)
NOT_FOR = {"robust-vs-eps": {"method", "eps", "kind"}, "tradeoff": {"method", "eps", "kind"},
           "explain": {"eval", "norm", "eps", "kind"}}  # fmt: skip


def start_hint(root: Path) -> str:
    """One sentence: how to start a sweep that this page would find in ``root``."""
    cmd = START if root == Path("sweeps") else f"{START} --out {root / 'mnist_tradeoff'}"
    return f"No sweep in {str(root)!r} yet: start one with `{cmd}`."


def _status(st_: SweepStatus, folder: Path) -> None:
    c = st_.counts
    total = sum(c.values())
    cols = st.columns(6)
    cols[0].metric("Done", f"{c['done']}/{total}")
    cols[1].metric("Running", c["running"])
    cols[2].metric("Failed", c["failed"])
    cols[3].metric("Pending", c["pending"])
    cols[4].metric("Time so far", duration(st_.seconds_done), help="in the finished cells")
    cols[5].metric("Estimate left", duration(st_.estimate_left),
                   help="from the finished cells of the same kind and model, else of the same kind")  # fmt: skip
    st.progress(c["done"] / total if total else 0.0)
    every = sweep_folders.refresh_every(st_)
    if every is not None:
        st.caption(f"Refreshing every {every:g} s while cells are running or pending.")
        if st_.driver_pid is None:
            st.info("No `lab sweep run` works on this folder now: run it again to continue (it skips the finished "
                    "cells and runs the interrupted ones again).")  # fmt: skip
    else:
        st.caption("The sweep is complete." if not c["failed"] else "No cell is left to run.")
    for r in st_.cells:
        if r.status == "failed":
            st.error(f"{r.label} [{r.key}] failed: {r.error}")
    waiting = sweep_folders.blocked(st_)
    if waiting:
        st.caption(f"{len(waiting)} pending cell(s) wait on a failed one.")
    if c["failed"]:
        st.caption(f"`lab sweep run SWEEP.toml --out {folder} --retry-failed` runs them again.")
    if st_.others:
        st.caption(f"{st_.others} cell(s) of earlier grids are kept in the store (not shown).")
    with st.expander("As `lab sweep status` prints it"):
        st.code("\n".join(status_lines(st_)), language=None)


def _table(folder: Path, recs: list[dict[str, Any]]) -> dict[str, str]:
    """The metric / rows / columns / where pickers and the table; returns the where-filter."""
    ms = metrics(folder)
    c1, c2, c3 = st.columns(3)
    metric = c1.selectbox("Metric", ms, index=ms.index("robust_accuracy") if "robust_accuracy" in ms else 0,
                          key=f"{KEY}_metric")  # fmt: skip
    rows = c2.selectbox("Rows", AXES, index=AXES.index("model"), key=f"{KEY}_rows")
    cols = c3.selectbox("Columns", AXES, index=AXES.index("eps"), key=f"{KEY}_cols")
    choices = sweep_folders.where_choices(recs, metric, [a for a in AXES if a not in (rows, cols)])
    picked: dict[str, str] = {}
    if choices:
        boxes = st.columns(min(4, len(choices)))
        for i, (axis, values) in enumerate(choices.items()):
            picked[axis] = boxes[i % len(boxes)].selectbox(f"Where {axis}", [ANY, *values], key=f"{KEY}_where_{axis}")
    where = sweep_folders.pinned(picked)
    try:
        t = sweep_table(folder, metric, rows=rows, cols=cols, where=where)
    except LabError as exc:
        st.error(str(exc))
        st.caption("Pin an axis with the Where boxes, or make it the rows or the columns.")
        return where
    st.markdown(table_text(t, "markdown"))
    d = st.columns([1, 1, 1, 5])
    for box, fmt, mime in zip(d, ("csv", "json", "markdown"), ("text/csv", "application/json", "text/markdown")):
        box.download_button(f"table.{'md' if fmt == 'markdown' else fmt}", table_text(t, fmt), mime=mime,
                            file_name=f"{folder.name}_{metric}.{'md' if fmt == 'markdown' else fmt}",
                            key=f"{KEY}_dl_{fmt}")  # fmt: skip
    return where


def _figures(folder: Path, st_: SweepStatus, recs: list[dict[str, Any]], where: dict[str, str]) -> None:
    c1, c2 = st.columns(2)
    by_axes = [a for a in AXES if a not in ("eps", "kind")]
    by = c1.selectbox("One line, point or bar per", by_axes, index=by_axes.index("model"), key=f"{KEY}_by")
    explained = sweep_folders.kind_metrics(recs, "explain")
    metric = "deletion_auc"
    if explained:
        metric = c2.selectbox("Explanation metric", explained, key=f"{KEY}_explain_metric",
                              index=explained.index(metric) if metric in explained else 0)  # fmt: skip
    if where:
        st.caption("The figures use the Where boxes that apply to them.")
    for tab, kind in zip(st.tabs(list(FIGURES.values())), FIGURES):
        with tab:
            pins = {a: v for a, v in where.items() if a not in NOT_FOR.get(kind, set()) | {by}}
            try:
                st.image(sweep_cache.sweep_figure(folder, kind, st_, by=by, where=pins, metric=metric))
            except LabError as exc:
                st.warning(f"Not drawn: {exc}")


def _cell_details(folder: Path, cell: CellRow) -> None:
    where = cell_dir(folder, cell.key)
    facts = [("kind", cell.kind), ("status", cell.status), ("attempts", str(cell.attempts)),
             ("seconds", duration(cell.seconds) if cell.seconds is not None else "-"), ("key", cell.key)]  # fmt: skip
    facts += [(k, str(v)) for k, v in sorted(cell.axes.items()) if v is not None]
    st.markdown("\n".join(f"- **{k}**: {v}" for k, v in facts))
    if cell.error:
        st.code(cell.error, language=None)
        trace = sweep_folders.cell_traceback(folder, cell.key) if cell.status == "failed" else ""
        if trace:
            with st.expander("Traceback"):
                st.code(trace, language=None)
    files = sweep_folders.cell_files(folder, cell.key)
    if files:
        st.markdown(f"**Files** in `{where}`: " + ", ".join(f"{n} ({size:,} bytes)" for n, size in files))
    if cell.kind == "train" and (where / "model.safetensors").is_file():
        st.caption(f"A lab run folder: `lab eval --model {where}`; with the runs folder set to "
                   f"{str(where.parent)!r} the Models and Playground pages list it.")  # fmt: skip
    if cell.kind == "evaluate" and (where / "report.json").is_file():
        with user_errors():
            st.markdown(f"**Report**: {reports.headline(reports.load_robustness(where / 'report.json')).text}")
    if cell.result:
        with st.expander("Result (as the store holds it)"):
            st.json(cell.result, expanded=True)


def _cells(folder: Path, st_: SweepStatus) -> None:
    st.dataframe(sweep_folders.cell_table(st_, folder), hide_index=True)
    by = {c.key: c for c in st_.cells}
    if not by:
        return
    key = st.selectbox("Details of", list(by), key=f"{KEY}_cell",
                       format_func=lambda k: f"{by[k].label} ({by[k].status})")  # fmt: skip
    _cell_details(folder, by[key])


def sweep_view(folder: Path) -> None:
    """The picked sweep: status, table, figures, cells (the part of the page that refreshes)."""
    try:
        st_ = sweep_status(folder)
        recs = records(folder)
    except LabError as exc:
        st.error(str(exc))
        return
    if st.session_state.get(LIVE) and not sweep_folders.is_live(st_):
        st.session_state[LIVE] = False
        st.rerun(scope="app")  # the last cell finished: redraw the page once, without the refresh
    st.subheader(f"Sweep {st_.name}")
    _status(st_, folder)
    st.subheader("Table")
    with user_errors():
        if recs:
            where = _table(folder, recs)
            st.subheader("Figures")
            _figures(folder, st_, recs, where)
        else:
            st.info("No cell has finished yet: the table and the figures appear with the first.")
    st.subheader("Cells")
    _cells(folder, st_)


def main() -> None:
    st.title("Experiments")
    root = settings.sweeps_folder_setting()
    found = sweep_folders.find_sweeps(root)
    if not found:
        st.info(start_hint(root))
        return
    names = {str(p): run_name(p, root) for p in found}
    chosen = st.selectbox("Sweep", list(names), index=sweep_folders.latest(found), key=f"{KEY}_sweep",
                          format_func=lambda p: names.get(p, p),
                          help="The sweeps in the sweeps folder (first shown: the one written last)")  # fmt: skip
    folder = Path(chosen)
    try:
        every = sweep_folders.refresh_every(sweep_status(folder))
    except LabError:
        every = None  # the view says why
    st.session_state[LIVE] = every is not None
    st.fragment(sweep_view, run_every=every)(folder)


if __name__ == "__main__":
    with user_errors():
        main()
