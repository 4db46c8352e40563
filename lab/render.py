"""Rendering of results the API computed: Markdown, the terminal table, PNG plots and images.

Nothing here computes a robustness number: every figure printed or plotted is read from a
:class:`lab.report.RobustnessReport` (or an attack run's result). numpy, matplotlib (its
Agg canvas, no pyplot state) and Pillow only; no torch.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from lab.epsilon import eps_style, format_eps
from lab.io import atomic_open, atomic_path, atomic_write_json

if TYPE_CHECKING:
    from lab.attack_run import AttackRunResult
    from lab.report import AttackResult, EpsResult, MaskingCheck, RobustnessReport

REPORT_JSON = "report.json"
REPORT_MD = "report.md"
REPORT_PLOT = "accuracy_vs_eps.png"
ATTACK_JSON = "attack.json"
#: size of the accuracy-vs-epsilon plot in pixels (width, height)
PLOT_SIZE_PX = (800, 500)
PLOT_DPI = 100

RED, GREEN, BOLD, RESET = "\x1b[31m", "\x1b[32m", "\x1b[1m", "\x1b[0m"
YELLOW = "\x1b[33m"
NORM_NAMES = {"linf": "L-inf", "l2": "L2"}


# ---------------------------------------------------------------- small formatters


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def pct(v: Any) -> str:
    """0.8125 -> '81.25%'; None/NaN -> '-'."""
    return "-" if _missing(v) else f"{100 * float(v):.2f}%"


def num(v: Any, digits: int = 4) -> str:
    return "-" if _missing(v) else f"{float(v):.{digits}g}"


def secs(v: Any) -> str:
    return "-" if _missing(v) else f"{float(v):.2f} s"


def norm_name(norm: str) -> str:
    return NORM_NAMES.get(norm, norm)


def _style(report: RobustnessReport) -> str:
    return eps_style(report.model or {})


def eps_label(report: RobustnessReport, e: float) -> str:
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


def _check_numbers(numbers: dict[str, Any]) -> str:
    parts = []
    for k, v in numbers.items():
        if isinstance(v, float):
            parts.append(f"{k}={v:.4g}")
        elif isinstance(v, list):
            parts.append(f"{k}=[{', '.join(f'{x:.4g}' if isinstance(x, float) else str(x) for x in v)}]")
        else:
            parts.append(f"{k}={v}")
    return ", ".join(parts)


# ---------------------------------------------------------------- Markdown


def _md(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    out += ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]
    return out


ATTACK_COLUMNS = ("attack", "kind", "attacked", "fooled", "robust accuracy after", "success rate",
                  "mean norm", "max norm", "seconds")  # fmt: skip


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
        lines += _md_table(ATTACK_COLUMNS, rows)
        lines.append("")
    lines += ["## Gradient-masking checks", ""]
    if report.checks:
        lines += [f"{checks_summary(report)}.", ""]
        lines += _md_table(("check", "result", "detail", "numbers"), [
            [c.name, "**FAIL**" if c.passed is False else check_label(c), c.detail, _check_numbers(c.numbers)]
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


# ---------------------------------------------------------------- terminal


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


# ---------------------------------------------------------------- plot


def _series(report: RobustnessReport) -> tuple[list[float], dict[str, list[float]], list[float]]:
    """(eps, accuracy after each attack per eps, worst case per eps), all read from the report.

    At an epsilon where an attack did not run (eps 0), its point is that epsilon's robust
    accuracy, which the report records (= clean accuracy at eps 0).
    """
    eps = [r.eps for r in report.results]
    titles = attack_titles(report)
    lines: dict[str, list[float]] = {t: [] for t in titles}
    for r in report.results:
        by = {attack_title(report, a): a.robust_accuracy_after for a in r.attacks}
        for t in titles:
            v = by.get(t, r.robust_accuracy if not r.attacks else float("nan"))
            lines[t].append(float("nan") if v is None else float(v))
    worst = [float("nan") if r.robust_accuracy is None else float(r.robust_accuracy) for r in report.results]
    return eps, lines, worst


def plot_accuracy_vs_eps(report: RobustnessReport, path: str | os.PathLike[str]) -> Path:
    """PNG of robust accuracy (after each attack, and the worst case in bold) vs epsilon.

    ``PLOT_SIZE_PX`` pixels; clean accuracy drawn as a dotted line; written atomically.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import PercentFormatter

    eps, lines, worst = _series(report)
    w, h = PLOT_SIZE_PX
    fig = Figure(figsize=(w / PLOT_DPI, h / PLOT_DPI), dpi=PLOT_DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    # The worst case underneath in bold, the attacks on top: the last attack's line often equals it.
    ax.plot(eps, [100 * v for v in worst], color="black", linewidth=3.5, marker="s", markersize=6, alpha=0.8,
            label="worst case (robust accuracy)", zorder=2)  # fmt: skip
    for title, ys in lines.items():
        ax.plot(eps, [100 * v for v in ys], marker="o", markersize=4, linewidth=1.3, label=f"after {title}",
                zorder=3)  # fmt: skip
    if not _missing(report.clean_accuracy):
        clean = 100 * float(report.clean_accuracy)
        ax.axhline(clean, color="gray", linestyle=":", linewidth=1.2, label=f"clean accuracy {pct(report.clean_accuracy)}")
        ax.plot([0.0], [clean], marker="*", markersize=12, color="gray", linestyle="none")
    ax.set_xticks(eps)
    labels = [eps_label(report, e) for e in eps]
    ax.set_xticklabels(labels, rotation=45 if len(eps) > 8 else 0, ha="right" if len(eps) > 8 else "center")
    ax.set_xlabel(f"epsilon ({norm_name(report.norm)})")
    ax.set_ylabel("accuracy")
    ax.set_ylim(-2, 102)
    ax.yaxis.set_major_formatter(PercentFormatter(100))
    ax.grid(True, alpha=0.3)
    title = f"{model_title(report)}: accuracy under attack, n={report.n}"
    if (report.headline or {}).get("upper_bound_only"):
        title += "\n(upper bound: weak attacks only)"
    ax.set_title(title, fontsize=10)
    check_notes = []
    if report.failed_checks:
        check_notes.append("gradient-masking check failed: " + ", ".join(c.name for c in report.failed_checks))
    if report.unrun_checks:
        check_notes.append("not run: " + ", ".join(c.name for c in report.unrun_checks))
    if check_notes:
        ax.text(0.01, 0.01, "; ".join(check_notes), transform=ax.transAxes,
                color="red" if report.failed_checks else "darkorange", fontsize=8, va="bottom")  # fmt: skip
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    target = Path(path)
    with atomic_path(target) as tmp:
        fig.savefig(tmp, format="png", dpi=PLOT_DPI)
    return target


def write_report(report: RobustnessReport, out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Write report.json, report.md and accuracy_vs_eps.png into ``out_dir``, each atomically."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / REPORT_JSON, "markdown": out / REPORT_MD, "plot": out / REPORT_PLOT}
    report.save(paths["json"])
    with atomic_open(paths["markdown"], "w") as fh:
        fh.write(report_markdown(report))
    plot_accuracy_vs_eps(report, paths["plot"])
    return paths


# ---------------------------------------------------------------- attack runs


def to_uint8_image(img: np.ndarray) -> np.ndarray:
    """float [C, H, W] in [0, 1] -> uint8 [H, W] (gray) or [H, W, 3] for Pillow / st.image."""
    a = np.clip(np.rint(np.asarray(img, dtype=np.float64) * 255), 0, 255).astype(np.uint8)
    return a[0] if a.shape[0] == 1 else np.ascontiguousarray(a.transpose(1, 2, 0))


def perturbation_image(delta: np.ndarray, scale: float) -> np.ndarray:
    """float [C, H, W] perturbation -> a [0, 1] picture ``0.5 + delta * scale`` (gray = unchanged)."""
    return np.clip(0.5 + np.asarray(delta, dtype=np.float64) * scale, 0.0, 1.0)


def save_png(img: np.ndarray, path: str | os.PathLike[str]) -> Path:
    """float [C, H, W] in [0, 1] -> PNG, atomically."""
    from PIL import Image

    target = Path(path)
    with atomic_path(target) as tmp:
        Image.fromarray(to_uint8_image(img)).save(tmp, format="PNG")
    return target


def write_attack_run(result: AttackRunResult, out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """clean_XXXX.png, adv_XXXX.png, perturbation_XXXX.png per image and attack.json."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = result.to_dict()
    delta = result.adversarial - result.clean
    for i, row in enumerate(result.images):
        files = {"clean": f"clean_{i:04d}.png", "adversarial": f"adv_{i:04d}.png",
                 "perturbation": f"perturbation_{i:04d}.png"}  # fmt: skip
        save_png(result.clean[i], out / files["clean"])
        save_png(result.adversarial[i], out / files["adversarial"])
        save_png(perturbation_image(delta[i], row.perturbation_scale), out / files["perturbation"])
        data["images"][i]["files"] = files
    data["png_note"] = "PNGs are 8-bit; the numbers in this file are for the float images before rounding"
    atomic_write_json(out / ATTACK_JSON, data)
    return {"json": out / ATTACK_JSON, "dir": out}


def attack_summary(result: AttackRunResult) -> str:
    """One line for the terminal."""
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
