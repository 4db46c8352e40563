"""Rendering of explanation maps the API computed: heat-map overlays, the image grid, and the
files and terminal lines of an explanation run.

Nothing here computes an attribution: :func:`overlay` colours a map that
:mod:`lab.runs.explain` (or any explainer) returned, :func:`grid_png` lays the pictures out,
and :func:`write_explain_run` writes an :class:`~lab.runs.explain.ExplainRun` as
``explanations.png`` + ``explanations.json``; :func:`explain_table` and :func:`quality_table`
tabulate those files (and ``metrics.json``) for the dashboard. numpy and matplotlib (its Agg canvas, no pyplot
state) only; no torch.

Signed maps (evidence for and against the class) use a diverging colormap symmetric
around 0 (:data:`SIGNED_CMAP`: red for, blue against); magnitude maps use a sequential one
(:data:`MAGNITUDE_CMAP`). Which maps are signed is a fact of each method
(:meth:`explain.base.Explainer.signed_for`), recorded in the run. Each map is scaled on its
own (max |value| of that map), so colours compare the pixels of one map, not maps with each other.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from lab.core.io import atomic_path, atomic_write_json
from lab.core.text import pct

if TYPE_CHECKING:
    from lab.runs.explain import ExplainRun

SIGNED_CMAP = "RdBu_r"
MAGNITUDE_CMAP = "inferno"
#: the files :func:`write_explain_run` writes
EXPLAIN_JSON = "explanations.json"
EXPLAIN_PNG = "explanations.png"
#: grid geometry in pixels
CELL_PX = 112
LABEL_PX = 170
HEADER_PX = 26
PAD_PX = 4
GRID_DPI = 100


def _hw(image: np.ndarray) -> np.ndarray:
    """[H, W], [1, H, W] or [C, H, W] float in [0, 1] -> float64 [C, H, W]."""
    a = np.asarray(image, dtype=np.float64)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3 or a.shape[0] not in (1, 3):
        raise ValueError(f"image must be [H, W], [1, H, W] or [3, H, W], got {a.shape}")
    return np.clip(a, 0.0, 1.0)


def image_rgb(image: np.ndarray) -> np.ndarray:
    """A float image ([H, W] or [C, H, W] in [0, 1]) as RGB uint8 [H, W, 3]."""
    a = _hw(image)
    if a.shape[0] == 1:
        a = np.repeat(a, 3, axis=0)
    return np.clip(np.rint(a.transpose(1, 2, 0) * 255), 0, 255).astype(np.uint8)


def gray(image: np.ndarray) -> np.ndarray:
    """Luminance [H, W] in [0, 1] (ITU-R 601 weights for RGB)."""
    a = _hw(image)
    if a.shape[0] == 1:
        return a[0]
    return 0.299 * a[0] + 0.587 * a[1] + 0.114 * a[2]


def map_colors(amap: np.ndarray, signed: bool) -> np.ndarray:
    """A map [H, W] (or [1, H, W]) as RGB floats [H, W, 3] in [0, 1], scaled by its own max |value|."""
    m = np.asarray(amap, dtype=np.float64)
    if m.ndim == 3 and m.shape[0] == 1:
        m = m[0]
    if m.ndim != 2:
        raise ValueError(f"map must be [H, W] or [1, H, W], got {m.shape}")
    m = np.nan_to_num(m, nan=0.0, posinf=0.0, neginf=0.0)
    scale = float(np.abs(m).max())
    scale = scale if scale > 0 else 1.0
    if signed:
        values, cmap = 0.5 + 0.5 * m / scale, colormaps[SIGNED_CMAP]  # 0 -> the middle (white)
    else:
        values, cmap = np.abs(m) / scale, colormaps[MAGNITUDE_CMAP]
    return np.asarray(cmap(np.clip(values, 0.0, 1.0)))[..., :3]


def overlay(image: np.ndarray, amap: np.ndarray, signed: bool, *, alpha: float = 0.6) -> np.ndarray:
    """The map coloured (diverging if ``signed``, sequential otherwise) and blended over the
    grayscale ``image``: RGB uint8 [H, W, 3]. ``alpha`` is the map's weight."""
    g = gray(image)
    colors = map_colors(amap, signed)
    if colors.shape[:2] != g.shape:
        raise ValueError(f"map {colors.shape[:2]} and image {g.shape} differ in size")
    out = (1.0 - alpha) * g[..., None] + alpha * colors
    return np.clip(np.rint(out * 255), 0, 255).astype(np.uint8)


def grid_png(
    path: str | os.PathLike[str],
    rows: Sequence[tuple[str, Sequence[np.ndarray]]],
    col_labels: Sequence[str],
    *,
    title: str | None = None,
    cell_px: int = CELL_PX,
) -> tuple[int, int]:
    """A PNG grid: one row per ``(label, [RGB uint8 [H, W, 3] pictures])``, headed by
    ``col_labels``; written atomically. Returns the PNG's (width, height) in pixels."""
    if not rows:
        raise ValueError("a grid needs at least one row")
    ncols = len(col_labels)
    for label, cells in rows:
        if len(cells) != ncols:
            raise ValueError(f"row {label!r} has {len(cells)} pictures for {ncols} columns")
    title_px = HEADER_PX if title else 0
    width = LABEL_PX + ncols * (cell_px + PAD_PX) + PAD_PX
    height = title_px + HEADER_PX + len(rows) * (cell_px + PAD_PX) + PAD_PX
    fig = Figure(figsize=(width / GRID_DPI, height / GRID_DPI), dpi=GRID_DPI, facecolor="white")
    FigureCanvasAgg(fig)
    if title:
        fig.text(0.5, 1 - (title_px / 2) / height, title, ha="center", va="center", fontsize=10, weight="bold")
    for j, name in enumerate(col_labels):
        x = (LABEL_PX + PAD_PX + j * (cell_px + PAD_PX) + cell_px / 2) / width
        fig.text(x, 1 - (title_px + HEADER_PX / 2) / height, name, ha="center", va="center", fontsize=8)
    for i, (label, cells) in enumerate(rows):
        top = title_px + HEADER_PX + i * (cell_px + PAD_PX)
        fig.text(PAD_PX / width, 1 - (top + cell_px / 2) / height, label, ha="left", va="center", fontsize=7,
                 wrap=True)  # fmt: skip
        for j, cell in enumerate(cells):
            left = LABEL_PX + PAD_PX + j * (cell_px + PAD_PX)
            ax = fig.add_axes((left / width, 1 - (top + cell_px) / height, cell_px / width, cell_px / height))
            ax.imshow(np.asarray(cell), interpolation="nearest")
            ax.set_axis_off()
    target = Path(path)
    with atomic_path(target) as tmp:
        fig.savefig(tmp, format="png", dpi=GRID_DPI)
    return width, height


# ---------------------------------------------------------------- an explanation run


def attack_heading(attack: Mapping[str, Any]) -> str:
    """An attack's config (``ExplainRun.attack``, the JSON's ``attack``) in a few words: ``pgd eps 0.3 (linf)``."""
    return f"{attack.get('name')} eps {attack.get('eps'):g} ({attack.get('norm')})"


def grid_rows(run: ExplainRun) -> tuple[list[tuple[str, list[np.ndarray]]], list[str]]:
    """The grid :func:`grid_png` draws: rows grouped by model, one per image; columns
    image | methods (and, with an attack, adversarial | methods on it)."""
    short = [run.headings.get(m, m) for m in run.methods]
    cols = ["image", *short]
    if run.attack is not None:
        cols += ["adversarial", *(f"{m}\n(adversarial)" for m in short)]
    rows: list[tuple[str, list[np.ndarray]]] = []
    for m in run.models:
        for i, name in enumerate(run.names):
            cls = m.class_names
            label = f"{m.name}\n{name}\npred {cls[int(m.predictions[i])]}"
            cells = [image_rgb(run.images[i])]
            cells += [overlay(run.images[i], m.maps[meth][i], run.signed[meth]) for meth in run.methods]
            if m.adversarial is not None and m.adv_predictions is not None:
                label += f"\nadv {cls[int(m.adv_predictions[i])]}"
                cells.append(image_rgb(m.adversarial[i]))
                cells += [overlay(m.adversarial[i], m.adv_maps[meth][i], run.signed[meth]) for meth in run.methods]
            rows.append((label, cells))
    return rows, cols


def write_explain_run(run: ExplainRun, out_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """explanations.png (the grid) and explanations.json into ``out_dir``, each atomically."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows, cols = grid_rows(run)
    title = attack_heading(run.attack) if run.attack is not None else None
    size = grid_png(out / EXPLAIN_PNG, rows, cols, title=title)
    data = run.to_dict()
    data["png"] = {"file": EXPLAIN_PNG, "size": list(size),
                   "colors": f"signed maps: {SIGNED_CMAP} (red for the class, blue against, white 0); magnitudes: "
                             f"{MAGNITUDE_CMAP}; each map scaled by its own max |value|"}  # fmt: skip
    atomic_write_json(out / EXPLAIN_JSON, data)
    return {"json": out / EXPLAIN_JSON, "png": out / EXPLAIN_PNG, "size": size, "dir": out}


def explain_summary(run: ExplainRun) -> list[str]:
    """Lines for the terminal: per model, accuracy or changed predictions and the mean clean-vs-
    adversarial map cosine per method."""
    lines = []
    for m in run.models:
        text = f"{m.name}: {len(run.names)} images x {len(run.methods)} methods"
        if run.labels is not None:
            text += f", clean accuracy {float((m.predictions == run.labels).mean()):.0%}"
        if m.adv_predictions is not None:
            if run.labels is not None:
                text += f", adversarial accuracy {float((m.adv_predictions == run.labels).mean()):.0%}"
            else:
                text += f", {int((m.adv_predictions != m.predictions).sum())} predictions changed"
            cos = []
            for meth in run.methods:
                vals = [c for c in m.cosines(meth) if c is not None]
                cos.append(f"{meth} {np.mean(vals):.2f}" if vals else f"{meth} -")
            text += "; map cosine clean vs adv: " + ", ".join(cos)
        lines.append(f"{text} ({m.seconds:.2f} s)")
    return lines


# ---------------------------------------------------------------- tables of the files a run wrote


def explain_table(data: dict[str, Any]) -> list[dict[str, str]]:
    """Per model and image of an explanation run: label, predictions, and per method the
    cosine similarity of the clean and adversarial maps (when the run attacked)."""
    rows = []
    for m in data.get("models", []):
        for img in m.get("images", []):
            row = {"model": str(m.get("name")), "image": str(img.get("name")),
                   "label": "-" if img.get("label") is None else str(img.get("label")),
                   "prediction": f"{img.get('prediction_name')} ({pct(img.get('confidence'))})"}  # fmt: skip
            if "adv_prediction" in img:
                row["adversarial prediction"] = f"{img.get('adv_prediction_name')} ({pct(img.get('adv_confidence'))})"
            for method, entry in (img.get("methods") or {}).items():
                cos = entry.get("cosine_clean_adv")
                if "cosine_clean_adv" in entry:
                    row[f"{method} cosine"] = "-" if cos is None else f"{cos:.2f}"
                else:
                    row[f"{method} top mass"] = f"{(entry.get('stats') or {}).get('top_mass', float('nan')):.2f}"
            rows.append(row)
    return rows


def quality_table(data: dict[str, Any]) -> list[dict[str, str]]:
    """A ``metrics.json`` as rows: per model and method, deletion/insertion AUC against a random
    map's, infidelity, sensitivity, the sanity check and the similarity under attack."""

    def f(v: Any, d: int = 3) -> str:
        return "-" if v is None else f"{float(v):.{d}f}"

    rows = []
    for model, methods in (data.get("models") or {}).items():
        for method, q in (methods or {}).items():
            sanity = q.get("sanity") or {}
            ua = q.get("under_attack") or {}
            rows.append({
                "model": str(model), "method": str(method),
                "deletion AUC (lower is better)": f"{f(q.get('deletion_auc'))} vs random {f(q.get('random_deletion_auc'))}",
                "insertion AUC (higher is better)": f"{f(q.get('insertion_auc'))} vs random {f(q.get('random_insertion_auc'))}",
                "infidelity": f(q.get("infidelity"), 4), "sensitivity": f(q.get("sensitivity"), 4),
                "sanity check": ("-" if not sanity else ("passed" if sanity.get("passed") else "FAILED")
                                 + f" (Spearman {f(sanity.get('final_spearman'), 2)})"),
                "clean vs adversarial Spearman": f(ua.get("spearman"), 2) if ua else "-",
            })  # fmt: skip
    return rows
