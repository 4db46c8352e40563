"""Pictures: the accuracy-vs-epsilon plot of a report (matplotlib's Agg canvas, no pyplot
state) and images as uint8 arrays and PNG files (Pillow). numpy only; no torch."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter
from PIL import Image

from lab.core.io import atomic_path
from lab.core.text import missing, pct
from lab.present.certify import certified_at, certified_label
from lab.present.text import attack_title, attack_titles, eps_label, model_title, norm_name

if TYPE_CHECKING:
    from lab.evaluation.report import RobustnessReport

#: size of the accuracy-vs-epsilon plot in pixels (width, height)
PLOT_SIZE_PX = (800, 500)
PLOT_DPI = 100


def _series(report: RobustnessReport) -> tuple[list[float], dict[str, list[float]], list[float]]:
    """(eps, accuracy after each attack per eps, worst case per eps), all read from the report.

    At an epsilon where an attack did not run (eps 0), its point is that epsilon's robust
    accuracy, which the report records (= clean accuracy at eps 0).
    """
    eps = [r.eps for r in report.results]
    titles = attack_titles(report)
    lines: dict[str, list[float]] = {t: [] for t in titles}
    for r in report.results:
        by = {attack_title(report, a): a.robust_accuracy_after for a in r.attacks}
        for t in titles:
            v = by.get(t, r.robust_accuracy if not r.attacks else float("nan"))
            lines[t].append(float("nan") if v is None else float(v))
    worst = [float("nan") if r.robust_accuracy is None else float(r.robust_accuracy) for r in report.results]
    return eps, lines, worst


def certified_series(report: RobustnessReport) -> tuple[str, list[float]] | None:
    """(label, certified accuracy per epsilon of the report; NaN where not certified), or None
    when the report carries no certification (``lab eval --certify``)."""
    if not report.certification:
        return None
    ys = []
    for r in report.results:
        c = certified_at(report, r.eps)
        ys.append(float("nan") if c is None else float(c["certified_accuracy"]))
    return certified_label(report), ys


def plot_accuracy_vs_eps(report: RobustnessReport, path: str | os.PathLike[str]) -> Path:
    """PNG of robust accuracy (after each attack, and the worst case in bold) vs epsilon.

    ``PLOT_SIZE_PX`` pixels; clean accuracy drawn as a dotted line; written atomically.
    """
    eps, lines, worst = _series(report)
    w, h = PLOT_SIZE_PX
    fig = Figure(figsize=(w / PLOT_DPI, h / PLOT_DPI), dpi=PLOT_DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    # The worst case underneath in bold, the attacks on top: the last attack's line often equals it.
    ax.plot(eps, [100 * v for v in worst], color="black", linewidth=3.5, marker="s", markersize=6, alpha=0.8,
            label="worst case (robust accuracy)", zorder=2)  # fmt: skip
    for title, ys in lines.items():
        ax.plot(eps, [100 * v for v in ys], marker="o", markersize=4, linewidth=1.3, label=f"after {title}",
                zorder=3)  # fmt: skip
    cert = certified_series(report)
    if cert is not None:  # the sandwich: certified (a lower bound) <= true robust accuracy <= attacked
        label, ys = cert
        ax.plot(eps, [100 * v for v in ys], color="tab:green", linewidth=2.2, linestyle="-.", marker="v",
                markersize=6, label=label, zorder=2)  # fmt: skip
        ax.fill_between(eps, [100 * v for v in ys], [100 * v for v in worst], color="tab:green", alpha=0.12,
                        label="true robust accuracy lies here")  # fmt: skip
    if not missing(report.clean_accuracy):
        clean = 100 * float(report.clean_accuracy)
        ax.axhline(clean, color="gray", linestyle=":", linewidth=1.2, label=f"clean accuracy {pct(report.clean_accuracy)}")
        ax.plot([0.0], [clean], marker="*", markersize=12, color="gray", linestyle="none")
    ax.set_xticks(eps)
    labels = [eps_label(report, e) for e in eps]
    ax.set_xticklabels(labels, rotation=45 if len(eps) > 8 else 0, ha="right" if len(eps) > 8 else "center")
    ax.set_xlabel(f"epsilon ({norm_name(report.norm)})")
    ax.set_ylabel("accuracy")
    ax.set_ylim(-2, 102)
    ax.yaxis.set_major_formatter(PercentFormatter(100))
    ax.grid(True, alpha=0.3)
    title = f"{model_title(report)}: accuracy under attack, n={report.n}"
    if (report.headline or {}).get("upper_bound_only"):
        title += "\n(upper bound: weak attacks only)"
    ax.set_title(title, fontsize=10)
    check_notes = []
    if report.failed_checks:
        check_notes.append("gradient-masking check failed: " + ", ".join(c.name for c in report.failed_checks))
    if report.unrun_checks:
        check_notes.append("not run: " + ", ".join(c.name for c in report.unrun_checks))
    if check_notes:
        ax.text(0.01, 0.01, "; ".join(check_notes), transform=ax.transAxes,
                color="red" if report.failed_checks else "darkorange", fontsize=8, va="bottom")  # fmt: skip
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    target = Path(path)
    with atomic_path(target) as tmp:
        fig.savefig(tmp, format="png", dpi=PLOT_DPI)
    return target


def to_uint8_image(img: np.ndarray) -> np.ndarray:
    """float [C, H, W] in [0, 1] -> uint8 [H, W] (gray) or [H, W, 3] for Pillow / st.image."""
    a = np.clip(np.rint(np.asarray(img, dtype=np.float64) * 255), 0, 255).astype(np.uint8)
    return a[0] if a.shape[0] == 1 else np.ascontiguousarray(a.transpose(1, 2, 0))


def perturbation_image(delta: np.ndarray, scale: float) -> np.ndarray:
    """float [C, H, W] perturbation -> a [0, 1] picture ``0.5 + delta * scale`` (gray = unchanged)."""
    return np.clip(0.5 + np.asarray(delta, dtype=np.float64) * scale, 0.0, 1.0)


def save_png(img: np.ndarray, path: str | os.PathLike[str]) -> Path:
    """float [C, H, W] in [0, 1] -> PNG, atomically."""
    target = Path(path)
    with atomic_path(target) as tmp:
        Image.fromarray(to_uint8_image(img)).save(tmp, format="PNG")
    return target
