"""Matplotlib figures for the pages (``matplotlib.figure.Figure``, no pyplot state, so
concurrent sessions do not share a current figure). They draw numbers the API returned.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from lab.present.reports import Curve
from lab.present.text import norm_name

#: colours of the "before" and "after" bars, and of the models in a comparison
BEFORE, AFTER = "#4C72B0", "#C44E52"
PALETTE = ("#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C")


def top_k(probs: np.ndarray, k: int) -> list[int]:
    """Class indices of the ``k`` largest probabilities, largest first (ties: lower index first)."""
    p = np.asarray(probs, dtype=np.float64).ravel()
    order = np.lexsort((np.arange(p.size), -p))
    return [int(i) for i in order[: max(1, min(k, p.size))]]


def probability_bars(
    series: Sequence[tuple[str, np.ndarray]],
    class_names: Sequence[str],
    *,
    k: int = 3,
    label: int | None = None,
    colors: Sequence[str] = (BEFORE, AFTER),
    title: str | None = None,
) -> Figure:
    """Horizontal bars of class probabilities: for each ``(name, probs [K])`` a bar per class,
    over the union of every series' top ``k`` classes. The true ``label`` is marked."""
    classes: list[int] = []
    for _, probs in series:
        for c in top_k(probs, k):
            if c not in classes:
                classes.append(c)
    classes.sort(key=lambda c: -max(float(p[c]) for _, p in series))
    n, m = len(classes), len(series)
    fig = Figure(figsize=(5.2, 0.9 + 0.24 * n * max(m, 1)))
    ax = fig.add_subplot(1, 1, 1)
    height = 0.8 / max(m, 1)
    ys = np.arange(n)
    for j, (name, probs) in enumerate(series):
        vals = [100 * float(probs[c]) for c in classes]
        pos = ys - 0.4 + height * (j + 0.5)
        bars = ax.barh(pos, vals, height=height * 0.92, color=colors[j % len(colors)], label=name)
        for b, v in zip(bars, vals):
            if v >= 0.5:
                ax.text(min(v + 1.5, 88), b.get_y() + b.get_height() / 2, f"{v:.1f}%", va="center", fontsize=7)
    names = [str(class_names[c]) + ("  (label)" if label is not None and c == label else "") for c in classes]
    ax.set_yticks(ys)
    ax.set_yticklabels(names, fontsize=8)
    for tick, c in zip(ax.get_yticklabels(), classes):
        if label is not None and c == label:
            tick.set_fontweight("bold")
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("probability (%)", fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def accuracy_curves(
    models: Sequence[tuple[str, Sequence[Curve]]],
    *,
    norm: str = "linf",
    eps_labels: dict[float, str] | None = None,
    title: str | None = None,
    clean: dict[str, float] | None = None,
) -> Figure:
    """Accuracy vs epsilon: per model one colour; its worst case bold, its attacks thin,
    its threat rows (gray-box, white-box, bpda, eot) dashed."""
    fig = Figure(figsize=(8.5, 4.2))
    ax = fig.add_subplot(1, 1, 1)
    styles = {"worst": {"linewidth": 2.8, "marker": "s", "markersize": 5, "linestyle": "-"},
              "attack": {"linewidth": 1.0, "marker": "o", "markersize": 3, "linestyle": ":", "alpha": 0.8},
              "row": {"linewidth": 1.4, "marker": "^", "markersize": 4, "linestyle": "--"},
              "certified": {"linewidth": 2.2, "marker": "v", "markersize": 5, "linestyle": "-."}}  # fmt: skip
    ticks: set[float] = set()
    single = len(models) == 1  # one report: a colour per line, the worst case black; several: a colour per model
    for i, (name, lines) in enumerate(models):
        for j, c in enumerate(lines):
            color = (
                ("black" if c.kind == "worst" else PALETTE[j % len(PALETTE)]) if single else PALETTE[i % len(PALETTE)]
            )
            ys = [100 * v if not math.isnan(v) else float("nan") for v in c.accuracy]
            label = c.label if single else f"{name}: {c.label}"
            if c.kind == "certified":
                color = "tab:green" if single else color
                worst = next((w for w in lines if w.kind == "worst"), None)
                if worst is not None and worst.eps == c.eps:  # the sandwich: the true robust accuracy is in between
                    ax.fill_between(c.eps, ys, [100 * v for v in worst.accuracy], color=color, alpha=0.12)
            ax.plot(c.eps, ys, color=color, label=label, **styles.get(c.kind, styles["attack"]))  # type: ignore[arg-type]
            ticks.update(c.eps)
        if clean and name in clean and not math.isnan(clean[name]):
            ax.axhline(100 * clean[name], color="gray" if single else PALETTE[i % len(PALETTE)], linewidth=0.8,
                       linestyle=(0, (1, 3)), alpha=0.7)  # fmt: skip
    if ticks:
        xs = sorted(ticks)
        ax.set_xticks(xs)
        labels = [(eps_labels or {}).get(x, f"{x:.3g}") for x in xs]
        ax.set_xticklabels(labels, fontsize=8, rotation=45 if len(xs) > 8 else 0)
    ax.set_xlabel(f"epsilon ({norm_name(norm)})", fontsize=9)
    ax.set_ylabel("accuracy", fontsize=9)
    ax.set_ylim(-2, 102)
    ax.yaxis.set_major_formatter(PercentFormatter(100))
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def history_plot(history: Sequence[dict[str, Any]], epochs_total: int | None = None) -> Figure:
    """Training curves from a run's history: test and training accuracy, and the loss."""
    fig = Figure(figsize=(6.5, 3.0))
    ax = fig.add_subplot(1, 1, 1)
    epochs = [int(h.get("epoch", i + 1)) for i, h in enumerate(history)]

    def series(key: str) -> list[float]:
        return [100 * float(h[key]) if isinstance(h.get(key), (int, float)) else float("nan") for h in history]

    ax.plot(epochs, series("test_acc"), marker="o", color=BEFORE, label="test accuracy")
    ax.plot(epochs, series("train_acc"), marker="o", color=PALETTE[2], label="training accuracy", alpha=0.8)
    ax.set_xlabel("epoch", fontsize=8)
    ax.set_ylabel("accuracy (%)", fontsize=8)
    if epochs_total:
        ax.set_xlim(0.5, max(epochs_total, max(epochs, default=1)) + 0.5)
    loss = [float(h.get("loss", float("nan"))) for h in history]
    ax2 = ax.twinx()
    ax2.plot(epochs, loss, marker=".", color=AFTER, linestyle="--", label="training loss")
    ax2.set_ylabel("loss", fontsize=8)
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], fontsize=7, loc="center right")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    return fig
