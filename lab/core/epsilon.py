"""Epsilons as people write them: ``0.3``, ``8/255``, ``0,2/255,8/255``, ``0:0.3:0.05``.

Parsing is exact: every number and fraction is read as a :class:`fractions.Fraction`, so a
range ``0:0.3:0.05`` ends exactly at 0.3 (inclusive) and ``0:8/255:2/255`` yields the same
floats as writing ``0,2/255,4/255,6/255,8/255``; floats are made only at the end.
:func:`check_eps` does the range checks (negative, above the data range: an L-inf radius
above 1, an L2 radius above the image's diameter) for every path that takes a radius.

:func:`default_eps` holds the conventional radii of the literature (Madry et al. 2018;
RobustBench): L-inf 0.3 / L2 1.5 on MNIST-like grayscale data, L-inf 8/255 / L2 0.5 on
CIFAR-like RGB data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import torch

from lab.core.errors import LabError
from lab.core.threat import make_threat

#: a range may not expand to more values than this (a typo like 0:1:1e-9 is not a sweep)
MAX_RANGE_VALUES = 1000
_EXAMPLES = "use e.g. 0.3, 8/255 or 0:0.3:0.05"


def _bad(part: str, text: str) -> LabError:
    where = f" in {text!r}" if part.strip() != text.strip() else ""
    return LabError(f"epsilon {part.strip()!r}{where} is not a number; {_EXAMPLES}")


def _number(part: str, text: str) -> Fraction:
    """``0.3``, ``1e-3`` or ``8/255`` (decimals allowed on both sides) as an exact Fraction."""
    s = part.strip()
    if not s:
        raise LabError(f"epsilon list {text!r} has an empty entry; {_EXAMPLES}")
    pieces = s.split("/")
    if len(pieces) > 2:
        raise _bad(part, text)
    try:
        values = [Fraction(p.strip()) for p in pieces]
    except (ValueError, ZeroDivisionError):
        raise _bad(part, text) from None
    if len(values) == 2:
        if values[1] == 0:
            raise LabError(f"epsilon {s!r} divides by zero; {_EXAMPLES}")
        return values[0] / values[1]
    return values[0]


def _range(part: str, text: str) -> list[Fraction]:
    pieces = part.split(":")
    if len(pieces) != 3:
        raise LabError(f"epsilon range {part.strip()!r} must be start:stop:step, e.g. 0:0.3:0.05")
    start, stop, step = (_number(p, text) for p in pieces)
    if step <= 0:
        raise LabError(f"epsilon range {part.strip()!r} needs a step > 0")
    if stop < start:
        raise LabError(f"epsilon range {part.strip()!r} ends below its start")
    count = int((stop - start) / step) + 1  # exact: Fractions, inclusive end
    if count > MAX_RANGE_VALUES:
        raise LabError(
            f"epsilon range {part.strip()!r} expands to {count} values; at most {MAX_RANGE_VALUES} are allowed"
        )
    return [start + i * step for i in range(count)]


def parse_number(text: str, what: str = "epsilon") -> float:
    """One number or fraction (``0.3``, ``8/255``) as a float; LabError naming ``what`` otherwise."""
    try:
        return float(_number(str(text), str(text)))
    except (LabError, OverflowError):
        raise LabError(f"{what} {str(text).strip()!r} is not a number; use e.g. 0.01 or 2/255") from None


def parse_eps(text: str) -> list[float]:
    """Parse an epsilon list in the order given (duplicates kept; the evaluator sorts).

    Accepts a number (``0.3``), a fraction (``8/255``), an inclusive range
    ``start:stop:step`` (``0:0.3:0.05``, ``0:8/255:2/255``) and comma-separated mixtures of
    these (``0,2/255,8/255``). Raises :class:`LabError` with one sentence otherwise.
    """
    if not isinstance(text, str) or not text.strip():
        raise LabError(f"no epsilon given; {_EXAMPLES}")
    values: list[Fraction] = []
    for part in text.split(","):
        if ":" in part:
            values.extend(_range(part, text))
        else:
            values.append(_number(part, text))
    out: list[float] = []
    for v in values:
        try:
            out.append(float(v))
        except OverflowError:
            raise LabError(f"epsilon list {text.strip()!r} holds a value too large to be an epsilon") from None
    return out


def _as_255(e: float) -> int | None:
    k = round(e * 255)
    return k if abs(e * 255 - k) < 1e-6 else None


def format_eps(e: float, style: str = "auto") -> str:
    """A short label for an epsilon.

    ``style``: ``"255"`` writes ``k/255`` whenever the value is a whole number of 8-bit
    levels (CIFAR-like data; ``0`` stays ``0``); ``"decimal"`` writes ``0.3``; ``"auto"``
    writes short decimals (up to 3 decimals, like ``0.3`` or ``0.05``) as such and other
    k/255 values (like ``8/255``) as fractions.
    """
    if style not in ("auto", "255", "decimal"):
        raise ValueError(f"unknown epsilon style {style!r}")
    if e is None or (isinstance(e, float) and math.isnan(e)):
        return "-"
    e = float(e)
    if e == 0:
        return "0"
    short = f"{e:.4g}"
    if style == "decimal":
        return short
    k = _as_255(e)
    if style == "255":
        return f"{k}/255" if k is not None else short
    if abs(round(e, 3) - e) < 1e-12:  # a short decimal the user typed as such
        return f"{round(e, 3):g}"
    return f"{k}/255" if k is not None else short


def eps_style(model_meta: dict[str, Any]) -> str:
    """The label style for a model: ``"255"`` for RGB (CIFAR-like) data, else ``"auto"``."""
    shape = model_meta.get("input_shape") or []
    return "255" if len(shape) == 3 and int(shape[0]) == 3 else "auto"


def default_eps(info: Any, norm: str) -> float:
    """The conventional radius for ``info`` (a ModelInfo or anything with ``input_shape``).

    Grayscale (1-channel, MNIST-like) data: L-inf 0.3, L2 1.5. Colour data: L-inf 8/255,
    L2 0.5 (the RobustBench CIFAR-10 threat models).
    """
    if norm not in ("linf", "l2"):
        raise LabError(f"unknown norm {norm!r}; choose linf or l2")
    shape = tuple(getattr(info, "input_shape", None) or info.get("input_shape"))  # type: ignore[union-attr]
    gray = int(shape[0]) == 1
    if norm == "linf":
        return 0.3 if gray else 8 / 255
    return 1.5 if gray else 0.5


def check_eps(eps: Sequence[float], norm: str, input_shape: Sequence[int] | None = None) -> list[float]:
    """Sorted, de-duplicated epsilons; LabError for a negative or out-of-range one.

    With ``input_shape`` (C, H, W) the L2 bound (the image diameter) is checked too.
    """
    if not eps:
        raise LabError("at least one epsilon is needed")
    for e in eps:
        threat = make_threat(norm, e)  # raises a LabError sentence for negative / too large values
        if input_shape is not None:
            threat.check_range(torch.zeros(1, *input_shape))
    return sorted(set(float(e) for e in eps))
