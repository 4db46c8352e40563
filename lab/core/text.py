"""Numbers as the lab writes them in sentences, tables and reports: ``81.25%``, ``0.3``, ``1.50 s``.

Shared by library messages (the CI gate's verdict) and the presentation layer, so one
number reads the same everywhere. None and NaN read ``-``.
"""

from __future__ import annotations

import math
from typing import Any


def missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def pct(v: Any) -> str:
    """0.8125 -> '81.25%'; None/NaN -> '-'."""
    return "-" if missing(v) else f"{100 * float(v):.2f}%"


def num(v: Any, digits: int = 4) -> str:
    return "-" if missing(v) else f"{float(v):.{digits}g}"


def secs(v: Any) -> str:
    return "-" if missing(v) else f"{float(v):.2f} s"
