"""A sweep's status and tables as text (Markdown, CSV, JSON) and its four figures.

Everything here renders what :mod:`lab.experiments.tables` and
:func:`lab.experiments.sweep.sweep_status` returned; nothing is recomputed. Accuracy-like
metrics are shown in percent (``81.25 ± 0.40``), others with four significant digits.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from lab.core.io import atomic_path
from lab.experiments.reproduce import Benchmark, ReproRow
from lab.experiments.sweep import SweepStatus
from lab.experiments.tables import Stat, SweepTable, series, stat, sweep_table
from lab.present.plots import PALETTE

FORMATS = ("markdown", "csv", "json")
PLOTS = ("robust-vs-eps", "tradeoff", "explain", "time")
_PERCENT_WORDS = ("accuracy", "test_acc")


def is_percent(metric: str) -> bool:
    """Accuracies are fractions shown as percentages."""
    return any(w in metric for w in _PERCENT_WORDS)


def stat_text(s: Stat | None, metric: str) -> str:
    """``81.25 ± 0.40`` (percent for accuracies; ``± `` only over several seeds), ``-`` for none."""
    if s is None or s.mean is None:
        return "-"
    scale, fmt = (100.0, "{:.2f}") if is_percent(metric) else (1.0, "{:.4g}")
    text = fmt.format(s.mean * scale)
    if s.n > 1 and s.std is not None:
        text += " ± " + fmt.format(s.std * scale)
    return text


def _label(axis: str, v: Any) -> str:
    if v is None:
        return "-"
    if axis == "eps":
        return f"{float(v):g}"
    return str(v)


def table_markdown(t: SweepTable) -> str:
    """The table in Markdown, with a caption line saying what is shown."""
    unit = " (%)" if is_percent(t.metric) else ""
    ns = {s.n for s in t.cells.values()}
    over = f"mean ± std over {'/'.join(str(n) for n in sorted(ns))} seed(s)" if ns else ""
    where = f", where {', '.join(f'{k}={v}' for k, v in t.where.items())}" if t.where else ""
    head = [f"{t.rows} \\ {t.cols}"] + [_label(t.cols, c) for c in t.col_labels]
    lines = [f"**{t.metric}**{unit}: {over}{where}", "", "| " + " | ".join(head) + " |",
             "|" + "|".join(["---"] * len(head)) + "|"]  # fmt: skip
    for r in t.row_labels:
        row = [_label(t.rows, r)] + [stat_text(t.cells.get((r, c)), t.metric) for c in t.col_labels]
        lines.append("| " + " | ".join(row) + " |")
    if t.warnings:
        lines.append("")
        lines += [f"warning: {w}" for w in t.warnings]
    return "\n".join(lines)


def table_csv(t: SweepTable) -> str:
    """Long CSV: one line per table cell with its mean, std and number of seeds."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([t.rows, t.cols, "metric", "mean", "std", "n"])
    for (r, c), s in t.cells.items():
        w.writerow([_label(t.rows, r), _label(t.cols, c), t.metric, "" if s.mean is None else repr(s.mean),
                    "" if s.std is None else repr(s.std), s.n])  # fmt: skip
    return buf.getvalue()


def table_text(t: SweepTable, fmt: str) -> str:
    if fmt == "markdown":
        return table_markdown(t)
    if fmt == "csv":
        return table_csv(t)
    return json.dumps(t.to_dict(), indent=2)


def _duration(s: float | None) -> str:
    if s is None:
        return "unknown"
    s = float(s)
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min"


def status_lines(st: SweepStatus, *, cells: bool = False) -> list[str]:
    """``lab sweep status``: counts, time so far, estimate left; with ``cells`` one line per cell."""
    c = st.counts
    total = sum(c.values())
    lines = [f"sweep {st.name}: {c['done']}/{total} done, {c['running']} running, {c['failed']} failed, "
             f"{c['pending']} pending",
             f"time in finished cells {_duration(st.seconds_done)}; estimated left {_duration(st.estimate_left)}"
             + (" (from the finished cells of the same kind and model, else kind)" if st.estimate_left is not None else
                " (no finished cell of some kind to estimate from)")]  # fmt: skip
    if st.driver_pid is not None:
        lines.append(f"`lab sweep run` is working on it (pid {st.driver_pid})")
    elif c["running"] or c["pending"]:
        lines.append("no `lab sweep run` is working on it: "
                     + (f"{c['running']} interrupted cell(s) and " if c["running"] else "")
                     + f"{c['pending']} pending cell(s) run at the next `lab sweep run`")  # fmt: skip
    if st.others:
        lines.append(f"{st.others} cell(s) of earlier grids are kept in the store")
    failed = [r for r in st.cells if r.status == "failed"]
    for r in failed:
        lines.append(f"  failed: {r.label} [{r.key}]: {r.error}")
    if failed:
        lines.append("  (run again with --retry-failed to retry them)")
    if cells:
        for r in st.cells:
            t = f"{r.seconds:.1f} s" if r.seconds is not None else ""
            lines.append(f"  {r.status:8s} {r.kind:8s} {r.key}  {r.label}  {t}")
    return lines


# ---------------------------------------------------------------- figures
def _save(fig: Figure, path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    FigureCanvasAgg(fig)
    with atomic_path(p) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    return p


def robust_vs_eps_figure(folder: str | os.PathLike[str], *, by: str = "model", where: dict[str, str] | None = None,
                         ) -> Figure:  # fmt: skip
    """Robust accuracy (per-image worst case) against the radius, one line per ``by`` value,
    a band of ± one standard deviation over seeds."""
    data = series(folder, "robust_accuracy", by=by, x="eps", where=where)
    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    for i, (name, pts) in enumerate(data.items()):
        xs = [float(x) for x, s in pts if s.mean is not None]
        ms = [s.mean for _, s in pts if s.mean is not None]
        sd = [s.std or 0.0 for _, s in pts if s.mean is not None]
        color = PALETTE[i % len(PALETTE)]
        ax.plot(xs, ms, marker="o", color=color, label=str(name))
        ax.fill_between(xs, [m - d for m, d in zip(ms, sd)], [m + d for m, d in zip(ms, sd)], color=color, alpha=0.2)
    ax.set_xlabel("epsilon")
    ax.set_ylabel("robust accuracy (per-image worst case)")
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("robust accuracy vs radius (band: ± 1 std over seeds)")
    return fig


def tradeoff_figure(folder: str | os.PathLike[str], *, eps: float | None = None, by: str = "model",
                    where: dict[str, str] | None = None) -> Figure:  # fmt: skip
    """Clean against robust accuracy at ``eps`` (default: the largest radius), one point per
    ``by`` value with ± one standard deviation over seeds on both axes."""
    robust = sweep_table(folder, "robust_accuracy", rows=by, cols="eps", where=where)
    radius = eps if eps is not None else max(float(c) for c in robust.col_labels)
    clean = sweep_table(folder, "clean_accuracy", rows=by, cols="seed", where=where)
    fig = Figure(figsize=(6, 4.5))
    ax = fig.add_subplot()
    for i, name in enumerate(robust.row_labels):
        r = next((s for (rv, c), s in robust.cells.items() if rv == name and abs(float(c) - radius) < 1e-9), None)
        cs = [s.mean for (rv, _), s in clean.cells.items() if rv == name and s.mean is not None]
        if r is None or r.mean is None or not cs:
            continue
        c = stat(cs)
        assert c.mean is not None
        ax.errorbar([c.mean], [r.mean], xerr=[c.std or 0.0], yerr=[r.std or 0.0], fmt="o", capsize=4,
                    color=PALETTE[i % len(PALETTE)], label=str(name))  # fmt: skip
    ax.set_xlabel("clean accuracy")
    ax.set_ylabel(f"robust accuracy at eps {radius:g}")
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("clean vs robust accuracy (± 1 std over seeds)")
    return fig


def explain_figure(folder: str | os.PathLike[str], *, metric: str = "deletion_auc", by: str = "model",
                   where: dict[str, str] | None = None) -> Figure:  # fmt: skip
    """Explanation faithfulness: ``metric`` per method (groups) and model (bars), error bars
    over seeds; the random map's value as a dashed line per model when it was measured."""
    t = sweep_table(folder, metric, rows="method", cols=by, where=where)
    fig = Figure(figsize=(max(6.0, 1.2 * len(t.row_labels) * max(1, len(t.col_labels)) / 2), 4.5))
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(t.col_labels))
    for j, model in enumerate(t.col_labels):
        xs, ms, sd = [], [], []
        for i, method in enumerate(t.row_labels):
            s = t.cells.get((method, model))
            if s is None or s.mean is None:
                continue
            xs.append(i + j * width)
            ms.append(s.mean)
            sd.append(s.std or 0.0)
        ax.bar(xs, ms, width=width, yerr=sd, capsize=3, color=PALETTE[j % len(PALETTE)], label=str(model))
    ax.set_xticks([i + width * (len(t.col_labels) - 1) / 2 for i in range(len(t.row_labels))])
    ax.set_xticklabels([str(m) for m in t.row_labels], rotation=20, ha="right")
    ax.set_ylabel(metric + (" (lower is better)" if "deletion" in metric else
                            " (higher is better)" if "insertion" in metric else ""))  # fmt: skip
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    ax.set_title(f"explanation quality: {metric} per method and model")
    return fig


def time_figure(st: SweepStatus) -> Figure:
    """Seconds per finished cell, longest first, coloured by kind."""
    done = sorted((r for r in st.cells if r.status == "done" and r.seconds is not None), key=lambda r: -(r.seconds or 0))
    kinds = list(dict.fromkeys(r.kind for r in done))
    fig = Figure(figsize=(7, max(2.5, 0.25 * len(done) + 1)))
    ax = fig.add_subplot()
    ax.barh([r.label for r in done][::-1], [float(r.seconds or 0.0) for r in done][::-1],
            color=[PALETTE[kinds.index(r.kind) % len(PALETTE)] for r in done][::-1])  # fmt: skip
    ax.set_xlabel("seconds")
    ax.tick_params(axis="y", labelsize=7)
    ax.set_title(f"time per cell ({', '.join(kinds)})")
    return fig


def save_plot(kind: str, folder: str | os.PathLike[str], path: str | os.PathLike[str], st: SweepStatus,
              *, where: dict[str, str] | None = None, metric: str | None = None,
              by: str = "model") -> Path:  # fmt: skip
    """Draw figure ``kind`` (one of :data:`PLOTS`) of the sweep in ``folder`` to the PNG ``path``."""
    if kind == "robust-vs-eps":
        fig = robust_vs_eps_figure(folder, by=by, where=where)
    elif kind == "tradeoff":
        fig = tradeoff_figure(folder, by=by, where=where)
    elif kind == "explain":
        fig = explain_figure(folder, metric=metric or "deletion_auc", by=by, where=where)
    else:
        fig = time_figure(st)
    return _save(fig, path)


# ---------------------------------------------------------------- lab reproduce
def _p(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.2f}%"


def reproduce_markdown(bench: Benchmark, rows: list[ReproRow], budget: str, seconds: float | None = None) -> str:
    """The lab's AutoAttack numbers beside the published ones, with times and test-set sizes."""
    head = ["model", "lab: clean", f"lab: AutoAttack at {bench.eps:g} (n)", "published AutoAttack (n)",
            "difference", "training", "evaluation", "masking checks"]  # fmt: skip
    lines = [f"**{bench.title}**, budget `{budget}`: the lab's recipes, the official AutoAttack (standard)", "",
             "| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]  # fmt: skip
    for r in rows:
        lab_aa = f"{_p(r.autoattack)} ({r.n:,})" if r.autoattack is not None and r.n else "not yet run"
        pub = f"{_p(r.published)} ({r.published_n:,})" if r.published is not None and r.published_n else "none published"
        diff = (f"{100 * (r.autoattack - r.published):+.2f} points" if r.autoattack is not None
                and r.published is not None else "-")  # fmt: skip
        checks = "-" if r.masking_failed is None else ("all pass" if r.masking_failed == 0 else
                                                       f"{r.masking_failed} FAILED")  # fmt: skip
        lines.append("| " + " | ".join([r.title, _p(r.clean), lab_aa, pub, diff, _duration(r.train_seconds),
                                        _duration(r.eval_seconds), checks]) + " |")  # fmt: skip
    lines.append("")
    lines += [f"{r.title}: {r.training_note}." for r in rows if r.training_note]
    if bench.source:
        lines.append(f"Published: {bench.source}; each on the authors' own model and {rows[0].published_n or 10000:,} "
                     "test images where given. The lab's rows are its own recipes, trained here.")  # fmt: skip
    else:
        lines.append(f"No published AutoAttack table exists for {bench.title}: only the lab's numbers are shown.")
    if any(r.n and r.published_n and r.n < r.published_n for r in rows):
        lines.append("The lab's numbers are on fewer test images than the published ones: a sample, with its "
                     "sampling error (about ±2 points at n 200, ±0.3 at n 10,000, one standard error at 90%).")
    if seconds is not None:
        lines.append(f"Wall time of this command: {_duration(seconds)}.")
    return "\n".join(lines)
