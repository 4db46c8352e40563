"""Models: the local zoo (recipe, dataset, metrics, defense; unreadable checkpoints listed
as such) and ``lab train`` on a recipe in the background, with live progress that
survives a page reload (:mod:`lab.dashboard.jobs`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import streamlit as st

from lab.core.text import pct
from lab.dashboard import cache, jobs, settings, widgets
from lab.dashboard.pages import HERE
from lab.dashboard.ui import run_name, user_errors
from lab.present import reports
from lab.present.models import defense_label
from lab.present.plots import history_plot
from lab.runs.playground import defense_record

KEY = "models"
#: seconds between refreshes of the jobs panel while a job runs
REFRESH_S = 2.0


def read_record(path: str) -> dict[str, Any]:
    """A run's ``model.json`` (the record without the weights); empty when unreadable."""
    try:
        data = json.loads((Path(path) / "model.json").read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, json.JSONDecodeError):
        return {}


def zoo_table(rows: list[dict[str, Any]], root: Path) -> list[dict[str, str]]:
    table = []
    for r in widgets.readable(rows):
        record = read_record(r["path"])
        m = r.get("metrics") or {}
        table.append({"run": run_name(r["path"], root), "architecture": str(r.get("arch")),
                      "dataset": str(r.get("dataset")), "recipe": str((record.get("config") or {}).get("name", "-")),
                      "test accuracy": pct(m.get("test_acc")), "defense": defense_label({"defense": r.get("defense")}),
                      "epochs": "-" if r.get("epochs") is None else str(r.get("epochs")),
                      "status": str(r.get("status"))})  # fmt: skip
    return table


def _details(rows: list[dict[str, Any]], root: Path) -> None:
    ok = widgets.readable(rows)
    by = {r["path"]: r for r in ok}
    path = st.selectbox("Details of", list(by), key=f"{KEY}_detail", format_func=lambda p: run_name(p, root))
    row = by[path]
    record = read_record(path)
    c1, c2 = st.columns([1, 2])
    with c1:
        st.markdown(widgets.facts_markdown(widgets.model_facts(row, record, root)))
        d = defense_record(record)
        if d:
            st.markdown("**Defense settings**")
            st.json(d.get("settings") or {}, expanded=True)
        found = reports.reports_for_run(reports.find_reports(root), path)
        if found:
            st.markdown("**Reports**: " + ", ".join(e.title for e in found) + " (see Reports)")
        else:
            st.caption(f"No robustness report yet: `lab eval --model {path}`.")
    with c2:
        history = (record.get("training") or {}).get("history") or []
        if history:
            total = ((record.get("config") or {}).get("train") or {}).get("epochs")
            st.pyplot(history_plot(history, total if isinstance(total, int) else None))
    with st.expander("Recipe (resolved)"):
        st.json(record.get("config") or {}, expanded=True)
    with st.expander("Metrics and versions"):
        st.json({"metrics": record.get("metrics"), "versions": record.get("versions"), "seed": record.get("seed"),
                 "git_commit": record.get("git_commit"), "created": record.get("created")}, expanded=True)  # fmt: skip


def _train_form(root: Path) -> None:
    folder = settings.recipes_dir()
    recipes = sorted(folder.glob("*.toml"))
    if not recipes:
        st.info(f"No recipe (*.toml) in {str(folder)!r}.")
        return
    names = [p.name for p in recipes]
    default = names.index("mnist_smallcnn.toml") if "mnist_smallcnn.toml" in names else 0
    name = st.selectbox("Recipe", names, index=default, key=f"{KEY}_recipe")
    recipe = folder / name
    with st.expander(f"{name}"):
        st.code(recipe.read_text(encoding="utf-8"), language="toml")
    c1, c2, c3 = st.columns([2, 1, 1])
    run = c1.text_input("Run folder name (under the runs folder)", value=recipe.stem, key=f"{KEY}_run_{name}")
    epochs = int(c2.number_input("Epochs (0: the recipe's)", 0, 1000, 0, key=f"{KEY}_epochs"))
    resume = c3.checkbox("Resume that run", key=f"{KEY}_resume", help="continue from its last finished epoch")
    if st.button("Start training in the background", key=f"{KEY}_start", type="primary"):
        overrides = [f"train.epochs={epochs}"] if epochs > 0 else []
        with user_errors():
            job = jobs.start_training(recipe, run.strip(), root, folder, overrides=overrides, resume=resume)
            st.success(f"Started job {job.id}: `{' '.join(job.cmd[1:])}`. Its progress is below; it keeps running "
                       "if you leave or reload this page.")  # fmt: skip


def _job(job: jobs.Job, root: Path) -> None:
    p = jobs.progress(job)
    total = p.epochs_total or "?"
    head = f"**{run_name(job.out, root)}** from {Path(job.recipe).name}: {job.status}"
    if job.returncode is not None and job.returncode != 0:
        head += f" (exit code {job.returncode})"
    st.markdown(head)
    text = f"epoch {p.epochs_done}/{total}"
    if p.metrics.get("test_acc") is not None:
        text += f", test accuracy {pct(p.metrics.get('test_acc'))}"
    if job.stage == "evaluate":
        text += "; evaluating under attack (lab eval)" if job.status in ("starting", "running") else "; evaluated"
    st.progress(1.0 if job.stage == "evaluate" else p.fraction, text=text)
    if p.last_line:
        st.code(p.last_line, language=None)
    c1, c2 = st.columns([1, 4])
    if job.status == "running" and c1.button("Stop", key=f"{KEY}_stop_{job.id}"):
        with user_errors():
            jobs.stop_job(job)
            st.info("Asked it to stop; finished epochs stay saved (resume them later).")
    if job.status == "complete":
        c2.page_link(str(HERE / "playground.py"), label="Try it on the Playground", icon=":material/science:")
    with st.expander("log"):
        st.code(jobs.log_tail(job.log) or "(empty)", language=None)


def _jobs_panel(root: Path) -> None:
    found = jobs.list_jobs(root)
    if not found:
        st.caption("No training started from the dashboard yet.")
        return
    running = {j.id for j in found if j.status in ("starting", "running")}
    seen = st.session_state.get(f"{KEY}_running", set())
    st.session_state[f"{KEY}_running"] = running
    if seen - running:  # a job ended: redraw the whole page (the zoo gains its model, refreshing stops)
        st.rerun(scope="app")
    for job in found:
        with st.container(border=True):
            _job(job, root)


def main() -> None:
    st.title("Models")
    root = settings.runs_dir()
    rows = cache.checkpoints(root)
    table = zoo_table(rows, root)
    if table:
        st.dataframe(table, hide_index=True)
    else:
        st.info(f"No readable model in {str(root)!r} yet.")
    for r in widgets.unreadable(rows):
        st.error(f"{run_name(r['path'], root)}: {r['error']}")
    if table:
        _details(rows, root)
    st.subheader("Train a model")
    _train_form(root)
    st.subheader("Training jobs")
    running = any(j.status in ("starting", "running") for j in jobs.list_jobs(root))
    st.fragment(_jobs_panel, run_every=REFRESH_S if running else None)(root)


if __name__ == "__main__":
    with user_errors():
        main()
