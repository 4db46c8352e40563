"""One-sentence checks for attack settings (LabError naming the bad value and what was expected).

Shared by the adapters so that every attack says ``steps must be a whole number >= 1, got 0``
the same way :mod:`attacks.gradient` does.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from lab.errors import LabError


def whole(name: str, value: Any, minimum: int = 1) -> int:
    """``value`` as an int >= ``minimum`` (bools and floats refused)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise LabError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    return int(value)


def number(name: str, value: Any, *, minimum: float = 0.0, strict: bool = True) -> float:
    """``value`` as a finite float > ``minimum`` (or >= with ``strict=False``)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = value > minimum if strict else value >= minimum
    if not ok:
        rel = ">" if strict else ">="
        raise LabError(f"{name} must be a number {rel} {minimum:g}, got {value!r}")
    return float(value)


def choice(name: str, value: Any, allowed: Iterable[str]) -> str:
    """``value`` if it is one of ``allowed``."""
    options = list(allowed)
    if value not in options:
        raise LabError(f"unknown {name} {value!r}; choose one of: {', '.join(options)}")
    return str(value)
