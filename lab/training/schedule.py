"""Learning-rate schedules as pure functions of the step, so a resumed run is exact.

``onecycle`` (Smith & Topin, 2019): linear rise from ``peak/25`` to ``peak`` over the
first ``warmup_frac`` of the steps, then cosine annealing to ``peak/1e4`` (the
defaults of ``torch.optim.lr_scheduler.OneCycleLR``). ``cosine``: cosine from ``peak``
to 0. ``constant``: ``peak``.
"""

from __future__ import annotations

import math


def lr_at(step: int, total: int, peak: float, kind: str, warmup_frac: float = 0.3) -> float:
    """Learning rate for optimizer step ``step`` (0-based) of ``total``."""
    if total <= 0:
        return peak
    t = min(max(step, 0), total) / total
    if kind == "constant":
        return peak
    if kind == "cosine":
        return 0.5 * peak * (1.0 + math.cos(math.pi * t))
    if kind == "onecycle":
        start, end = peak / 25.0, peak / 25.0 / 1e4
        if t < warmup_frac:
            return start + (peak - start) * t / warmup_frac
        u = (t - warmup_frac) / (1.0 - warmup_frac)
        return end + 0.5 * (peak - end) * (1.0 + math.cos(math.pi * u))
    raise ValueError(f"unknown schedule {kind!r}")
