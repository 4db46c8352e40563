"""The terminal: colours (never without a terminal or with NO_COLOR), the aligned report
table ``lab eval`` prints, and the one line ``lab attack`` prints."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING

from lab.core.epsilon import eps_style, format_eps
from lab.core.text import num, pct
from lab.present.certify import certified_at, certified_label
from lab.present.text import (
    attack_title,
    check_label,
    checks_summary,
    eps_label,
    model_title,
    norm_name,
    worst_case_label,
)

if TYPE_CHECKING:
    from lab.evaluation.report import RobustnessReport
    from lab.runs.attack import AttackRunResult

RED, GREEN, BOLD, RESET = "\x1b[31m", "\x1b[32m", "\x1b[1m", "\x1b[0m"
YELLOW = "\x1b[33m"


def use_color(stream: IO[str] | None = None) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org)."""
    stream = stream if stream is not None else sys.stdout
    if os.environ.get("NO_COLOR"):
        return False
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _align(rows: Sequence[Sequence[str]], right: set[int]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()
            for row in rows]  # fmt: skip


def report_table(report: RobustnessReport, color: bool = False) -> str:
    """Aligned plain-text table of every (epsilon, attack) row, worst cases and checks.

    With ``color``: worst-case rows bold, passed checks green, failed checks red, checks not run yellow.
    """
    paint = (lambda code, s: f"{code}{s}{RESET}") if color else (lambda code, s: s)
    head = (f"{model_title(report)}  {norm_name(report.norm)}  n={report.n}  "
            f"suite {report.suite or '-'}  clean accuracy {pct(report.clean_accuracy)}")  # fmt: skip
    rows: list[list[str]] = [["eps", "attack", "attacked", "fooled", "robust acc", "success", "mean norm",
                              "max norm", "time"]]  # fmt: skip
    worst_rows: set[int] = set()
    for r in report.results:
        label = eps_label(report, r.eps)
        if not r.attacks:
            rows.append([label, "(no attack)", "-", "-", pct(r.robust_accuracy), "-", "-", "-", "-"])
            continue
        for a in r.attacks:
            rows.append([label, attack_title(report, a), str(a.attacked), str(a.fooled), pct(a.robust_accuracy_after),
                         pct(a.success_rate), num(a.mean_norm), num(a.max_norm), f"{a.seconds:.2f}s"])  # fmt: skip
        worst_rows.add(len(rows))
        what = worst_case_label(report)
        rows.append([label, what, "", "", pct(r.robust_accuracy), "", "", "", f"{r.seconds:.2f}s"])
        cert = certified_at(report, r.eps)
        if cert is not None:
            rows.append([label, certified_label(report), "", "", pct(cert["certified_accuracy"]), "", "", "",
                         f"{float(cert['seconds']):.2f}s"])  # fmt: skip
    lines = _align(rows, right={2, 3, 4, 5, 6, 7, 8})
    out = [head, ""]
    for i, line in enumerate(lines):
        out.append(paint(BOLD, line) if i in worst_rows else line)
    if report.checks:
        out += ["", f"gradient-masking checks: {checks_summary(report)}"]
        names = max(len(c.name) for c in report.checks)
        colors = {True: GREEN, False: RED, None: YELLOW}
        labels = max(len(check_label(c)) for c in report.checks)
        for c in report.checks:
            text = f"  {check_label(c).ljust(labels)}  {c.name.ljust(names)}  {c.detail}"
            out.append(paint(colors[c.passed], text))
    else:
        out += ["", "gradient-masking checks: not run"]
    return "\n".join(out)


def attack_summary(result: AttackRunResult) -> str:
    """One line for the terminal: the attack, its epsilon, accuracy before -> after, success rate."""
    cfg = result.attack
    n = len(result.images)
    fooled = sum(i.fooled for i in result.images)
    what = f"{cfg.get('name')} ({norm_name(result.norm)}, eps {format_eps(result.eps, eps_style(result.model))}"
    what += f", targeted: {result.targeted})" if result.targeted != "no" else ")"
    if result.label_source == "dataset":
        acc = f"accuracy {pct(result.accuracy_before)} -> {pct(result.accuracy_after)} on {n} images"
    else:
        acc = f"{fooled}/{n} predictions changed (labels = clean predictions)"
    return f"{what}: {acc}; success rate {pct(result.success_rate)}; {result.seconds:.2f} s"
