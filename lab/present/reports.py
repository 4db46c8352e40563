"""Reports found under a runs folder, and the tables and curves the pages draw from them.

Three kinds, told apart by their JSON, never by guessing from numbers:

* robustness reports (``report.json`` written by ``lab eval``,
  :class:`lab.evaluation.report.RobustnessReport`);
* explanation runs (``explanations.json`` written by ``lab explain``);
* explanation quality tables (``metrics.json`` written by ``lab explain --metrics``).

Everything here reads what a report holds; nothing is recomputed. Fields that newer reports
add (per-epsilon threat ``rows`` such as gray-box / white-box / BPDA / EOT, an attack's
``threat``) are shown when present and skipped when an older report lacks them. The
robust accuracy is the per-image worst case over every attack of every row. An unreadable file is an entry with an ``error``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.core.errors import LabError
from lab.core.text import num, pct
from lab.evaluation.report import RobustnessReport
from lab.present.certify import certified_at, certified_label
from lab.present.text import (
    attack_title,
    attack_titles,
    check_label,
    check_numbers,
    eps_label,
    headline_text,
    multi_row,
    norm_name,
)

ROBUSTNESS = "robustness"
EXPLANATIONS = "explanations"
QUALITY = "explanation quality"
#: file name -> the kind of report it may be
REPORT_FILES = {"report.json": ROBUSTNESS, "explanations.json": EXPLANATIONS, "metrics.json": QUALITY}
#: threat rows in the order reports of denoised models list them
ROW_ORDER = ("gray-box", "white-box", "bpda", "eot")
#: JSON files larger than this are not opened while listing (a report is a few hundred kB at most)
MAX_REPORT_BYTES = 50 * 1024 * 1024


@dataclass
class ReportEntry:
    """One report file: its kind, where it is, what to call it, and the run it is about."""

    kind: str
    path: Path
    title: str
    run: str | None = None  # the model's run folder as the report records it
    error: str | None = None
    info: dict[str, Any] = field(default_factory=dict)  # a few facts for the listing (suite, norm, n)


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _read_json(path: Path) -> Any:
    if path.stat().st_size > MAX_REPORT_BYTES:
        raise LabError(f"{str(path)!r} is larger than {MAX_REPORT_BYTES // 2**20} MB; not opened")
    return json.loads(path.read_text(encoding="utf-8"))


def _entry(path: Path, kind: str, root: Path) -> ReportEntry | None:
    """The entry for ``path``, an entry with an error when it is unreadable, None when it is
    some other JSON file that happens to share the name."""
    where = _rel(path.parent, root)
    try:
        data = _read_json(path)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, LabError) as exc:
        return ReportEntry(kind=kind, path=path, title=where, error=f"unreadable: {exc}")
    if not isinstance(data, dict):
        return None
    if kind == ROBUSTNESS:
        if data.get("format") != "lab-robustness-report":
            return None
        model = data.get("model") or {}
        info = {"suite": data.get("suite"), "norm": data.get("norm"), "n": data.get("n")}
        return ReportEntry(kind=kind, path=path, title=where, run=model.get("run"), info=info)
    if kind == EXPLANATIONS:
        if data.get("format") != "lab-explain-run":
            return None
        runs = [str((m.get("model") or {}).get("run")) for m in data.get("models", []) if isinstance(m, dict)]
        return ReportEntry(kind=kind, path=path, title=where, run=runs[0] if len(runs) == 1 else None,
                           info={"methods": data.get("methods"), "n": data.get("n")})  # fmt: skip
    if not isinstance(data.get("models"), dict) or "images" not in data:
        return None
    return ReportEntry(kind=kind, path=path, title=where, info={"models": list(data["models"])})


def find_reports(root: str | os.PathLike[str]) -> list[ReportEntry]:
    """Every report under ``root`` (robustness first, then explanations), sorted by place."""
    base = Path(root)
    if not base.is_dir():
        raise LabError(f"runs folder {str(base)!r} does not exist")
    out: list[ReportEntry] = []
    for name, kind in REPORT_FILES.items():
        for path in sorted(base.rglob(name)):
            if any(part.startswith(".") for part in path.relative_to(base).parts):
                continue  # hidden folders (the dashboard's job records, editors' temp dirs)
            entry = _entry(path, kind, base)
            if entry is not None:
                out.append(entry)
    return out


def same_folder(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Whether two paths name the same file or folder (False when one cannot be resolved)."""
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def reports_for_run(entries: Iterable[ReportEntry], run_dir: str | os.PathLike[str]) -> list[ReportEntry]:
    """The readable robustness reports about the model in ``run_dir``: those inside the
    folder, and those whose recorded run is that folder."""
    run = Path(run_dir)
    found = []
    for e in entries:
        if e.kind != ROBUSTNESS or e.error:
            continue
        inside = same_folder(e.path.parent, run) or run.resolve() in e.path.resolve().parents
        if inside or (e.run is not None and same_folder(e.run, run)):
            found.append(e)
    return found


def load_robustness(path: str | os.PathLike[str]) -> Any:
    """The :class:`lab.evaluation.report.RobustnessReport` at ``path`` (LabError when unreadable)."""
    return RobustnessReport.load(path)


def load_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    """An explanation run's or quality table's JSON (LabError when unreadable)."""
    p = Path(path)
    try:
        data = _read_json(p)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LabError(f"{str(p)!r} is unreadable ({exc})") from None
    if not isinstance(data, dict):
        raise LabError(f"{str(p)!r} is not a lab report")
    return data


# ---------------------------------------------------------------- robustness tables


def threat_row_names(report: Any) -> list[str]:
    """The threat rows (gray-box, white-box, bpda, eot, ...) the report has, in a stable order."""
    names: list[str] = []
    for r in report.results:
        for name in getattr(r, "rows", None) or {}:
            if name not in names:
                names.append(name)
    known = [n for n in ROW_ORDER if n in names]
    return known + [n for n in names if n not in known]


def shown_rows(report: Any) -> list[str]:
    """The threat rows worth showing: all of them when there are several (a defended model),
    none when the only row is the plain white-box one (it equals the worst case)."""
    names = threat_row_names(report)
    return names if len(names) > 1 else []


def summary_table(report: Any) -> list[dict[str, str]]:
    """One row per epsilon: clean accuracy, accuracy after each attack (cumulative), the
    threat rows when the report has them, and the worst case."""
    titles = attack_titles(report)
    rows_named = shown_rows(report)
    table = []
    for r in report.results:
        row = {"epsilon": eps_label(report, r.eps), "clean": pct(r.clean_accuracy)}
        by = {attack_title(report, a): a.robust_accuracy_after for a in r.attacks}
        for t in titles:
            row[f"after {t}"] = pct(by.get(t)) if r.attacks else pct(r.robust_accuracy)
        rows = getattr(r, "rows", None) or {}
        for name in rows_named:
            row[name] = pct(rows.get(name))
        row["worst case, all rows" if rows_named else "worst case"] = pct(r.robust_accuracy)
        table.append(row)
    return table


def report_facts(report: Any) -> list[tuple[str, str]]:
    """``(name, value)`` facts of a report for a short list: model, threat model, examples, suite,
    clean accuracy, time."""
    m = report.model or {}
    where = f", run {m['run']}" if m.get("run") else ""
    return [("model", f"{m.get('arch', '?')} on {m.get('dataset', '?')}{where}"),
            ("threat model", f"{norm_name(report.norm)}, eps {', '.join(eps_label(report, e) for e in report.eps)}"),
            ("examples", str(report.n)), ("suite", report.suite or "-"),
            ("clean accuracy", pct(report.clean_accuracy)), ("time", f"{report.seconds:.1f} s")]  # fmt: skip


def threat_row_table(report: Any) -> list[dict[str, str]]:
    """One row per epsilon: the accuracy of each threat row (:func:`shown_rows`) and over every row
    (the robust accuracy); empty when the report has no rows worth showing."""
    names = shown_rows(report)
    if not names:
        return []
    return [{"epsilon": eps_label(report, r.eps), **{n: pct((getattr(r, "rows", None) or {}).get(n)) for n in names},
             "every row (robust accuracy)": pct(r.robust_accuracy)} for r in report.results]  # fmt: skip


def attack_table(report: Any, eps_result: Any) -> list[dict[str, str]]:
    """The attacks run at one epsilon, as ``lab eval`` lists them (plus ``threat`` when recorded)."""
    rows = []
    several = multi_row(report)
    for a in eps_result.attacks:
        row = {"attack": a.attack, "kind": a.kind}
        if several:
            row["threat row"] = str(getattr(a, "threat", "-"))
        row.update({"attacked": str(a.attacked), "fooled": str(a.fooled),
                    "robust accuracy after": pct(a.robust_accuracy_after), "success rate": pct(a.success_rate),
                    "mean norm": num(a.mean_norm), "max norm": num(a.max_norm), "seconds": f"{a.seconds:.2f}"})  # fmt: skip
        rows.append(row)
    return rows


def check_table(report: Any) -> list[dict[str, str]]:
    """The gradient-masking checks: name, PASS / FAIL / not run, what was checked and the numbers."""
    return [{"check": c.name, "result": check_label(c), "detail": c.detail,
             "numbers": check_numbers(c.numbers)} for c in report.checks]  # fmt: skip


@dataclass
class Headline:
    text: str  # lab.present.text.headline_text: says "at most" for an upper bound and names failed checks
    rows: list[str]  # the threat rows the per-image worst case is over (one for a plain model)
    upper_bound: bool
    failed_checks: list[str]


def headline(report: Any) -> Headline:
    h = report.headline or {}
    rows = [t["name"] for t in (report.threat_rows or [])]
    return Headline(text=headline_text(report), rows=rows, upper_bound=bool(h.get("upper_bound_only")),
                    failed_checks=[c.name for c in report.failed_checks])  # fmt: skip


@dataclass
class Curve:
    """One line of an accuracy-vs-epsilon plot; ``kind`` picks its style."""

    label: str
    eps: list[float]
    accuracy: list[float]  # fractions; NaN where the report has no value
    kind: str  # "worst" | "attack" | "row" | "certified" (a lower bound, drawn with the worst case above it)


def _f(v: Any) -> float:
    return float("nan") if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def curves(report: Any, *, attacks: bool = True, rows: bool = True, prefix: str = "") -> list[Curve]:
    """The report's accuracy-vs-epsilon lines: the worst case, after each attack, each threat row."""
    eps = [float(r.eps) for r in report.results]
    label = "worst case, all rows" if shown_rows(report) else "worst case"
    out = [Curve(f"{prefix}{label}", eps, [_f(r.robust_accuracy) for r in report.results], "worst")]
    if attacks:
        for t in attack_titles(report):
            ys = []
            for r in report.results:
                by = {attack_title(report, a): a.robust_accuracy_after for a in r.attacks}
                ys.append(_f(by.get(t)) if r.attacks else _f(r.robust_accuracy))
            out.append(Curve(f"{prefix}after {t}", eps, ys, "attack"))
    if rows:
        for name in shown_rows(report):
            ys = [_f((getattr(r, "rows", None) or {}).get(name)) for r in report.results]
            out.append(Curve(f"{prefix}{name}", eps, ys, "row"))
    if getattr(report, "certification", None):
        ys = [_f((certified_at(report, e) or {}).get("certified_accuracy")) for e in eps]
        out.append(Curve(f"{prefix}{certified_label(report)}", eps, ys, "certified"))
    return out
