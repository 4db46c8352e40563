"""Batched similarities between two sets of attribution maps (one value per image).

Used by the model-randomization sanity check and by the explanations-under-attack report:

* :func:`spearman`: Spearman rank correlation of the flattened maps (average ranks for ties,
  via ``scipy.stats.rankdata``), in [-1, 1];
* :func:`ssim`: structural similarity (Wang et al., 2004) of the maps min-max normalized to
  [0, 1], 11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03, valid convolution;
* :func:`top_k_iou`: intersection over union of the ``top_k`` fraction of most salient pixels.

All take maps [B, C, H, W] (channels are summed) and return float64 tensors [B] on the CPU.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import rankdata

from lab.core.errors import LabError


def _flat(a: torch.Tensor, b: torch.Tensor, absolute: bool) -> tuple[torch.Tensor, torch.Tensor]:
    if a.shape != b.shape or a.ndim != 4:
        raise LabError(f"maps must both be shaped [B, C, H, W] and match, got {tuple(a.shape)} and {tuple(b.shape)}")
    a, b = a.detach().double().cpu().sum(1), b.detach().double().cpu().sum(1)
    if absolute:
        a, b = a.abs(), b.abs()
    return a.flatten(1), b.flatten(1)


def spearman(a: torch.Tensor, b: torch.Tensor, *, absolute: bool = True) -> torch.Tensor:
    """Spearman rank correlation per image [B] between maps ``a`` and ``b`` ([B, C, H, W]).

    ``absolute`` ranks ``|map|`` (Adebayo et al., 2018). A map that is constant gives 1 when the
    other one is identical (nothing changed) and 0 otherwise (no rank information).
    """
    fa, fb = _flat(a, b, absolute)
    ra, rb = rankdata(fa.numpy(), axis=1), rankdata(fb.numpy(), axis=1)
    ra, rb = ra - ra.mean(1, keepdims=True), rb - rb.mean(1, keepdims=True)
    den = np.sqrt((ra**2).sum(1) * (rb**2).sum(1))
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.where(den > 0, (ra * rb).sum(1) / np.where(den > 0, den, 1.0), 0.0)
    same = (fa == fb).all(1).numpy()
    rho = np.where(same, 1.0, np.clip(rho, -1.0, 1.0))
    return torch.from_numpy(rho)


def normalize01(maps: torch.Tensor) -> torch.Tensor:
    """Per-image min-max scaling to [0, 1] (a constant map becomes all zeros)."""
    flat = maps.flatten(1)
    lo, hi = flat.min(1).values, flat.max(1).values
    span = (hi - lo).clamp_min(1e-12)
    out = (flat - lo[:, None]) / span[:, None]
    return out.where((hi - lo)[:, None] > 0, torch.zeros_like(out)).view_as(maps)


def _gaussian_window(size: int, sigma: float) -> torch.Tensor:
    g = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(g**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]


def ssim(
    a: torch.Tensor, b: torch.Tensor, *, absolute: bool = True, window: int = 11, sigma: float = 1.5
) -> torch.Tensor:
    """Mean SSIM per image [B] between maps ``a`` and ``b`` ([B, C, H, W]), each normalized to [0, 1].

    The window shrinks to the largest odd size that fits maps smaller than ``window``.
    Identical maps give 1; values lie in [-1, 1].
    """
    fa, fb = _flat(a, b, absolute)
    h, w = a.shape[-2:]
    x = normalize01(fa).view(-1, 1, h, w)
    y = normalize01(fb).view(-1, 1, h, w)
    size = min(window, h, w)
    size -= 1 - size % 2
    k = _gaussian_window(size, sigma)
    c1, c2 = 0.01**2, 0.03**2
    mx, my = F.conv2d(x, k), F.conv2d(y, k)
    sxx = F.conv2d(x * x, k) - mx**2
    syy = F.conv2d(y * y, k) - my**2
    sxy = F.conv2d(x * y, k) - mx * my
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx**2 + my**2 + c1) * (sxx + syy + c2))
    return s.flatten(1).mean(1).clamp(-1.0, 1.0)


def top_k_iou(a: torch.Tensor, b: torch.Tensor, *, top_k: float = 0.1, absolute: bool = True) -> torch.Tensor:
    """Intersection over union per image [B] of the ``top_k`` fraction (0, 1] of most salient pixels."""
    if not 0 < top_k <= 1:
        raise LabError(f"top_k must be a fraction in (0, 1], got {top_k!r}")
    fa, fb = _flat(a, b, absolute)
    n = fa.shape[1]
    k = max(1, round(top_k * n))
    ma = torch.zeros_like(fa, dtype=torch.bool).scatter_(1, fa.topk(k, 1).indices, True)
    mb = torch.zeros_like(fb, dtype=torch.bool).scatter_(1, fb.topk(k, 1).indices, True)
    inter = (ma & mb).sum(1).double()
    return inter / (2 * k - inter)
