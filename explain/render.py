"""Rendering of explanation maps the API computed: heat-map overlays and the image grid.

Nothing here computes an attribution: :func:`overlay` colours a map that
:mod:`explain.run` (or any explainer) returned and :func:`grid_png` lays the pictures out.
numpy and matplotlib (its Agg canvas, no pyplot state) only; no torch.

Signed maps (evidence for and against the class) use a diverging colormap symmetric
around 0 (:data:`SIGNED_CMAP`: red for, blue against); magnitude maps use a sequential one
(:data:`MAGNITUDE_CMAP`). Each map is scaled on its own (max |value| of that map), so
colours compare the pixels of one map, not maps with each other.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lab.io import atomic_path

SIGNED_CMAP = "RdBu_r"
MAGNITUDE_CMAP = "inferno"
#: methods whose maps keep their sign with their default settings (the others are magnitudes:
#: saliency, smoothgrad_sq, vargrad, gradcam, attention)
SIGNED_METHODS = frozenset({
    "input_x_gradient", "integrated_gradients", "deeplift", "gradient_shap", "occlusion", "guided_backprop",
    "guided_gradcam",
})  # fmt: skip
#: noise-tunnel bases that keep the sign (smoothgrad's default base, ``saliency``, is |gradient|)
SIGNED_BASES = frozenset({"gradient", "input_x_gradient", "guided_backprop"})
#: grid geometry in pixels
CELL_PX = 112
LABEL_PX = 170
HEADER_PX = 26
PAD_PX = 4
GRID_DPI = 100


def is_signed(method: str, settings: Mapping[str, Any] | None = None) -> bool:
    """Whether ``method`` (with ``settings``) returns signed maps, i.e. wants a diverging colormap."""
    settings = settings or {}
    if method == "smoothgrad":
        return str(settings.get("base") or "saliency") in SIGNED_BASES
    if settings.get("reduce") == "abs_sum":
        return False
    return method in SIGNED_METHODS


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
    from matplotlib import colormaps

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
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

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
