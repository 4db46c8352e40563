"""Words for a robustness report: labels, titles, the headline sentence, check labels.

Shared by the terminal table, the Markdown report, the plots and the dashboard. Every
number is read from a :class:`lab.evaluation.report.RobustnessReport`; nothing is computed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lab.core.epsilon import eps_style, format_eps
from lab.core.text import pct

if TYPE_CHECKING:
    from lab.evaluation.report import AttackResult, MaskingCheck, RobustnessReport

NORM_NAMES = {"linf": "L-inf", "l2": "L2"}


def norm_name(norm: str) -> str:
    """``L-inf`` / ``L2`` for ``linf`` / ``l2`` (anything else unchanged)."""
    return NORM_NAMES.get(norm, norm)


def _style(report: RobustnessReport) -> str:
    return eps_style(report.model or {})


def eps_label(report: RobustnessReport, e: float) -> str:
    """Epsilon ``e`` as the report's data writes it (``8/255`` on RGB data, ``0.3`` on grayscale)."""
    return format_eps(e, _style(report))


def model_title(report: RobustnessReport) -> str:
    m = report.model or {}
    return f"{m.get('arch', 'model')} on {m.get('dataset', '?')}"


def multi_row(report: RobustnessReport) -> bool:
    """Whether the report has several threat rows (a defended model: gray-box, white-box, ...)."""
    return len(report.threat_rows or []) > 1


def worst_case_label(report: RobustnessReport) -> str:
    """The name of the robust-accuracy line: the per-image worst case (over every row, when several)."""
    return "worst case, all rows" if multi_row(report) else "worst case"


def attack_title(report: RobustnessReport, a: AttackResult) -> str:
    """``pgd-20``, or ``pgd-20 [bpda]`` in a report with several threat rows."""
    return f"{a.attack} [{a.threat}]" if multi_row(report) else a.attack


def attack_titles(report: RobustnessReport) -> list[str]:
    """Attack titles in run order (as they appear in the results)."""
    seen: list[str] = []
    for r in report.results:
        for a in r.attacks:
            if attack_title(report, a) not in seen:
                seen.append(attack_title(report, a))
    if not seen:
        seen = [str(a.get("label") or a.get("name")) for a in report.attacks]
    return seen


def headline_text(report: RobustnessReport) -> str:
    """One sentence: the headline robust accuracy, 'at most' when it is only an upper bound."""
    h = report.headline or {}
    if not h and report.results:
        last = report.results[-1]
        h = {"eps": last.eps, "robust_accuracy": last.robust_accuracy, "attacks": attack_titles(report),
             "upper_bound_only": True}  # fmt: skip
    if not h:
        return "no result"
    where = f"{norm_name(report.norm)} eps {eps_label(report, h.get('eps', 0.0))}"
    attacks = ", ".join(h.get("attacks") or attack_titles(report))
    if h.get("upper_bound_only"):
        text = (f"robust accuracy at most {pct(h.get('robust_accuracy'))} at {where} "
                f"(an upper bound: only weak attacks were run: {attacks})")  # fmt: skip
    else:
        text = f"robust accuracy {pct(h.get('robust_accuracy'))} at {where} (per-image worst case over {attacks})"
    if multi_row(report):
        names = [t["name"] for t in report.threat_rows]
        text += f"; per image over every attack of all {len(names)} threat rows ({', '.join(names)})"
    failed = report.failed_checks
    if failed:
        text += (f"; {len(failed)} gradient-masking check{'s' if len(failed) > 1 else ''} FAILED "
                 f"({', '.join(c.name for c in failed)})")  # fmt: skip
        if multi_row(report):  # the checks attack the white-box pipeline
            text += ": the white-box row's gradients are masked; the adaptive rows exist for that, and a number may still be too high"
        else:
            text += ": the number may be far too high"
    unrun = [c.name for c in report.checks if c.passed is None]
    if unrun:
        text += f"; not run (no pass): {', '.join(unrun)}"
    return text


def check_label(check: MaskingCheck) -> str:
    """``PASS``, ``FAIL`` or ``not run`` (a check that could not run is never a pass)."""
    return {"pass": "PASS", "FAIL": "FAIL"}.get(check.status, "not run")


def checks_summary(report: RobustnessReport) -> str:
    """``"4 of 5 passed, 1 FAILED"``, ``"3 of 5 passed, 2 not run"``: only real passes count."""
    checks = report.checks
    if not checks:
        return "not run"
    passed = sum(1 for c in checks if c.passed is True)
    text = f"{passed} of {len(checks)} passed"
    if report.failed_checks:
        text += f", {len(report.failed_checks)} FAILED"
    if report.unrun_checks:
        text += f", {len(report.unrun_checks)} not run ({', '.join(c.name for c in report.unrun_checks)})"
    return text


def check_numbers(numbers: dict[str, Any]) -> str:
    """A check's numbers as ``key=value`` pairs: ``eps=0.3, pgd20=0.0625, probe=32``."""
    parts = []
    for k, v in numbers.items():
        if isinstance(v, float):
            parts.append(f"{k}={v:.4g}")
        elif isinstance(v, list):
            parts.append(f"{k}=[{', '.join(f'{x:.4g}' if isinstance(x, float) else str(x) for x in v)}]")
        else:
            parts.append(f"{k}={v}")
    return ", ".join(parts)
