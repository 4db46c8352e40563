"""Inside the network, drawn: the drift curve (relative L2 between the clean and the
adversarial image's activations, layer by layer, one line per model), a layer's feature
maps side by side for the two images, and the first layer's filters. Figures are
``matplotlib.figure.Figure`` (no pyplot state); :func:`write_inside` is what
``lab explain --layers`` writes.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure, SubFigure

from lab.core.io import atomic_write_bytes, atomic_write_json
from lab.present.plots import PALETTE
from lab.present.terminal import _align as align
from lab.runs.inside import InsideRun


def short_layer(name: str) -> str:
    """``net.features.3`` -> ``features.3`` (the wrapper's prefix says nothing)."""
    return name[4:] if name.startswith("net.") else name


def drift_figure(runs: Sequence[InsideRun]) -> Figure:
    """Relative L2 drift per layer, the input first, one line per model."""
    fig = Figure(figsize=(7.5, 3.4), layout="constrained")
    ax = fig.add_subplot()
    longest: list[str] = []
    for i, run in enumerate(runs):
        rows = run.drift_rows()
        labels = [f"{short_layer(r['layer'])}\n{r['kind']}" if r["layer"] != "input" else "input" for r in rows]
        values = [r["drift"] for r in rows]
        ax.plot(range(len(values)), values, marker="o", ms=3, color=PALETTE[i % len(PALETTE)], label=run.name)
        if len(labels) > len(longest):
            longest = labels
    ax.set_ylim(bottom=0)
    ax.set_xticks(range(len(longest)), longest, rotation=60, ha="right", fontsize=6)
    ax.set_ylabel("relative L2, adversarial vs clean")
    ax.set_title("How far the adversarial image's activations drift from the clean one's", fontsize=9)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    return fig


def _gray(img: np.ndarray) -> np.ndarray:
    """[C, H, W] in [0, 1] -> [H, W] (gray) or [H, W, 3] (RGB) for imshow."""
    return img[0] if img.shape[0] == 1 else np.transpose(img, (1, 2, 0))


def feature_maps_figure(run: InsideRun, layer: int, channels: int = 8) -> Figure:
    """Layer ``layer``'s first ``channels`` feature maps: the clean image's row, the
    adversarial image's, and their absolute difference; each channel on one colour scale."""
    n = min(channels, run.view.clean[layer].shape[1])
    fig = Figure(figsize=(1.1 * (n + 1), 3.6), layout="constrained")
    _draw_feature_maps(fig, run, layer, n)
    return fig


def _draw_feature_maps(fig: Figure | SubFigure, run: InsideRun, layer: int, n: int) -> None:
    """:func:`feature_maps_figure`'s drawing of ``n`` channels, into a figure or a subfigure."""
    v = run.view
    clean, adv = v.clean[layer][0], v.adversarial[layer][0]
    if clean.ndim != 3:
        raise ValueError(f"layer {v.layers[layer]} is not spatial")
    axes = fig.subplots(3, n + 1, squeeze=False)
    images = (run.attack.clean[0], run.attack.adversarial[0])
    titles = ("clean", "adversarial", "|difference|")
    for r in range(3):
        ax = axes[r][0]
        if r < 2:
            ax.imshow(_gray(images[r]), cmap="gray", vmin=0, vmax=1)
        else:
            ax.imshow(_gray(np.abs(images[1] - images[0])), cmap="magma")
        ax.set_ylabel(titles[r], fontsize=7)
    for c in range(n):
        a, b = clean[c].numpy(), adv[c].numpy()
        lo, hi = float(min(a.min(), b.min())), float(max(a.max(), b.max()))
        hi = hi if hi > lo else lo + 1e-6
        axes[0][c + 1].imshow(a, cmap="viridis", vmin=lo, vmax=hi)
        axes[1][c + 1].imshow(b, cmap="viridis", vmin=lo, vmax=hi)
        axes[2][c + 1].imshow(np.abs(b - a), cmap="magma", vmin=0, vmax=hi - lo)
        axes[0][c + 1].set_title(f"ch {c}", fontsize=7)
    for row in axes:
        for ax in row:
            ax.set_xticks([])
            ax.set_yticks([])
    drift = float(v.drift[layer, 0])
    fig.suptitle(f"{run.name}: {short_layer(v.layers[layer])} ({v.kinds[layer]}, {tuple(clean.shape)}), "
                 f"drift {drift:.3f}", fontsize=8)  # fmt: skip


def filters_figure(filters: torch.Tensor, name: str, limit: int = 32) -> Figure:
    """The first convolution's filters [O, I, k, k] (the first ``limit``), each on its own scale;
    RGB filters as colour patches, others by their mean over input channels."""
    w = filters[:limit].numpy()
    n = len(w)
    cols = min(8, n)
    rows = (n + cols - 1) // cols
    fig = Figure(figsize=(1.0 * cols, 1.0 * rows + 0.4), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if i >= n:
            ax.axis("off")
            continue
        f = w[i]
        if f.shape[0] == 3:
            lo, hi = f.min(), f.max()
            ax.imshow(np.transpose((f - lo) / (hi - lo + 1e-12), (1, 2, 0)))
        else:
            g = f.mean(0)
            m = float(np.abs(g).max()) or 1.0
            ax.imshow(g, cmap="RdBu_r", vmin=-m, vmax=m)
    fig.suptitle(f"first-layer filters of {name} ({filters.shape[0]} x {tuple(filters.shape[1:])})", fontsize=8)
    return fig


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return buf.getvalue()


def write_inside(runs: Sequence[InsideRun], out_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """``layers.json``, ``layers_drift.png``, and per model ``layers_<i>_maps.png`` (every
    spatial layer's first feature maps) and ``layers_<i>_filters.png``. Each file atomically."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Any] = {"json": out / "layers.json", "drift": out / "layers_drift.png", "maps": [],
                               "filters": []}  # fmt: skip
    atomic_write_json(written["json"], {"format": "lab-inside", "format_version": 1,
                                        "models": [r.to_dict() for r in runs]})  # fmt: skip
    atomic_write_bytes(written["drift"], _png(drift_figure(runs)))
    for i, run in enumerate(runs):
        spatial = run.view.spatial()
        if spatial:  # one figure, a row of subfigures per spatial layer
            shown = [min(6, run.view.clean[j].shape[1]) for j in spatial]
            fig = Figure(figsize=(1.1 * (max(shown) + 1), 3.6 * len(spatial)), layout="constrained")
            for sub, j, n in zip(fig.subfigures(len(spatial), 1, squeeze=False)[:, 0], spatial, shown):
                _draw_feature_maps(sub, run, j, n)
            path = out / f"layers_{i}_maps.png"
            atomic_write_bytes(path, _png(fig))
            written["maps"].append(path)
        if run.view.filters is not None:
            path = out / f"layers_{i}_filters.png"
            atomic_write_bytes(path, _png(filters_figure(run.view.filters, run.name)))
            written["filters"].append(path)
    return written


def drift_lines(runs: Sequence[InsideRun]) -> list[str]:
    """The drift table as aligned text lines: one row per layer, one column per model."""
    tables = [r.drift_rows() for r in runs]
    longest = max(tables, key=len)
    head = ["layer", "kind", "shape", *[r.name for r in runs]]
    rows = [head]
    for i, row in enumerate(longest):
        values = [f"{t[i]['drift']:.4f}" if i < len(t) else "-" for t in tables]
        rows.append([short_layer(row["layer"]), row["kind"], "x".join(map(str, row["shape"])), *values])
    return align(rows, right=set())

