"""The CI gate behind ``lab eval --fail-under``: is this report's number good enough, and may it be trusted?

:func:`gate` refuses a number (whatever its value) whose gradient-masking checks failed or
never ran, or that only weak attacks produced, unless the caller accepts unverified numbers;
otherwise it compares the per-image worst-case robust accuracy with the threshold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from lab.core.errors import LabError
from lab.core.text import pct as _pct
from lab.evaluation.report import SANDWICH_CHECK


def check_threshold(value: float | None) -> float | None:
    """``--fail-under``: None or a fraction in [0, 1]."""
    if value is None:
        return None
    if math.isnan(value) or not 0.0 <= value <= 1.0:
        raise LabError(f"--fail-under {value:g} is not a fraction in [0, 1]; e.g. 0.85 for 85%")
    return value


@dataclass(frozen=True)
class Gate:
    """The verdict of ``--fail-under``: passed or not, and one sentence saying why."""

    passed: bool
    reason: str


def gate(report: Any, threshold: float | None, *, accept_unverified: bool = False) -> Gate | None:
    """``--fail-under``: None without a threshold; else a :class:`Gate`.

    A number is refused (not passed), whatever its value, when a gradient-masking check
    failed on it, when no check ran (``--no-checks``, or every check "not run"), or when only
    weak attacks produced it (an upper bound),
    unless ``accept_unverified``; then it passes when the headline robust accuracy (the
    per-image worst case) is at least ``threshold``.
    """
    if threshold is None:
        return None
    h = report.headline or {}
    acc = h.get("robust_accuracy")
    value = f"robust accuracy {_pct(acc)}"
    if not accept_unverified:
        failed = [c.name for c in report.failed_checks]
        if failed:
            return Gate(False, f"{value} is not accepted: {len(failed)} gradient-masking check"
                               f"{'s' if len(failed) > 1 else ''} failed ({', '.join(failed)}), so the number may "
                               "be far too high (--accept-unverified takes it anyway)")  # fmt: skip
        # the certification's consistency check guards the bounds, not the attacks against masking
        ran = [c for c in report.checks if c.passed is not None and c.name != SANDWICH_CHECK]
        if not ran and any(r.eps > 0 for r in report.results):
            return Gate(False, f"{value} is not accepted: no gradient-masking check ran on it "
                               "(drop --no-checks, or --accept-unverified takes it anyway)")  # fmt: skip
        if h.get("upper_bound_only"):
            return Gate(False, f"{value} is not accepted: only weak attacks produced it "
                               f"({', '.join(h.get('attacks') or [])}), so it is only an upper bound (run --suite "
                               "standard or autoattack, or --accept-unverified takes it anyway)")  # fmt: skip
    if acc is None or (isinstance(acc, float) and math.isnan(acc)) or float(acc) < threshold:
        return Gate(False, f"{value} is below --fail-under {_pct(threshold)}")
    return Gate(True, f"{value} >= --fail-under {_pct(threshold)}")
