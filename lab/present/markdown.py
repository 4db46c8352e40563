"""A robustness report as Markdown (``report.md``): setup, headline, threat rows, a table
per epsilon, the gradient-masking checks, warnings and the run's facts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from lab.core.text import num, pct, secs
from lab.present.certify import certified_at, certified_label
from lab.present.text import (
    attack_title,
    attack_titles,
    check_label,
    check_numbers,
    checks_summary,
    eps_label,
    headline_text,
    model_title,
    multi_row,
    norm_name,
    worst_case_label,
)

if TYPE_CHECKING:
    from lab.evaluation.report import EpsResult, RobustnessReport

ATTACK_COLUMNS = ("attack", "kind", "attacked", "fooled", "robust accuracy after", "success rate",
                  "mean norm", "max norm", "seconds")  # fmt: skip


def _md(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    out += ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]
    return out


def _attack_rows(report: RobustnessReport, r: EpsResult) -> list[list[str]]:
    return [
        [attack_title(report, a), a.kind, str(a.attacked), str(a.fooled), pct(a.robust_accuracy_after),
         pct(a.success_rate), num(a.mean_norm), num(a.max_norm), f"{a.seconds:.2f}"]
        for a in r.attacks
    ]  # fmt: skip


def threat_row_lines(report: RobustnessReport) -> list[str]:
    """Markdown: what each threat row means and its robust accuracy per epsilon (defended models)."""
    if not multi_row(report):
        return []
    eps = [r for r in report.results if r.eps > 0]
    header = ["threat row", "what the attacks see"] + [f"eps {eps_label(report, r.eps)}" for r in eps]
    rows = []
    for t in report.threat_rows:
        rows.append([t["name"], t.get("description", "")] + [pct((r.rows or {}).get(t["name"])) for r in eps])
    rows.append(["**every row**", "robust only if every attack of every row failed on the image (the robust accuracy)"]
                + [f"**{pct(r.robust_accuracy)}**" for r in eps])  # fmt: skip
    return ["## Threat rows", "", "Every attack runs in every row; the defended model judges each result. "
            "The robust accuracy at each epsilon is the per-image worst case over all rows (last line), "
            "never above the lowest row.", ""] + _md_table(header, rows) + [""]


def report_markdown(report: RobustnessReport) -> str:
    """The whole report as Markdown: setup, headline, a table per epsilon, checks, warnings."""
    m = report.model or {}
    data = (report.meta or {}).get("data") or {}
    lines = [f"# Robustness report: {model_title(report)}", ""]
    facts = [("model", f"{m.get('arch', '?')} ({m.get('dataset', '?')})" + (f", run `{m['run']}`" if m.get("run") else ""))]
    if m.get("test_acc") is not None:
        facts.append(("test accuracy from training", pct(m.get("test_acc"))))
    facts.append(("threat model", f"{norm_name(report.norm)}, eps {', '.join(eps_label(report, e) for e in report.eps)}"))
    examples = str(report.n)
    if data.get("split"):
        examples += (f" ({data.get('dataset', '')} {data['split']} images "
                     f"{data.get('index_start')}..{int(data.get('index_stop', 0)) - 1})")  # fmt: skip
    facts.append(("examples", examples))
    facts.append(("suite", report.suite or "-"))
    facts.append(("attacks", ", ".join(attack_titles(report)) or "-"))
    facts.append(("clean accuracy", pct(report.clean_accuracy)))
    facts.append(("time", secs(report.seconds)))
    lines += [f"- **{k}**: {v}" for k, v in facts]
    lines += ["", "## Headline", ""]
    lines.append(f"**{headline_text(report)}**")
    lines.append("")
    lines += threat_row_lines(report)
    lines += ["## Results", ""]
    for r in report.results:
        lines.append(f"### eps = {eps_label(report, r.eps)}" + (f" ({r.eps:.4g})" if eps_label(report, r.eps) != num(r.eps) else ""))
        lines.append("")
        if not r.attacks:
            lines.append(f"No attack runs at eps {eps_label(report, r.eps)}: robust accuracy = clean accuracy "
                         f"= {pct(r.robust_accuracy)}.")  # fmt: skip
            lines.append("")
            continue
        rows = _attack_rows(report, r)
        rows.append([f"**{worst_case_label(report)}**", "", "", "", f"**{pct(r.robust_accuracy)}**", "", "", "", f"{r.seconds:.2f}"])
        cert = certified_at(report, r.eps)
        if cert is not None:
            rows.append([certified_label(report), "bounds", "", "", pct(cert["certified_accuracy"]), "", "", "",
                         f"{float(cert['seconds']):.2f}"])  # fmt: skip
        lines += _md_table(ATTACK_COLUMNS, rows)
        lines.append("")
    lines += ["## Gradient-masking checks", ""]
    if report.checks:
        lines += [f"{checks_summary(report)}.", ""]
        lines += _md_table(("check", "result", "detail", "numbers"), [
            [c.name, "**FAIL**" if c.passed is False else check_label(c), c.detail, check_numbers(c.numbers)]
            for c in report.checks
        ])  # fmt: skip
        if report.unrun_checks:
            lines += ["", "A check that did not run guards nothing: it is not a pass."]
    else:
        lines.append("Not run (`--no-checks`, or no epsilon above 0): nothing guards these numbers against gradient masking.")
    lines.append("")
    if report.warnings:
        lines += ["## Warnings", ""] + [f"- {_md(w)}" for w in report.warnings] + [""]
    meta = report.meta or {}
    if meta:
        keep = {k: v for k, v in meta.items() if k != "data"}
        lines += ["## Run", ""] + [f"- {k}: {_md(v)}" for k, v in keep.items()] + [""]
    return "\n".join(lines)
