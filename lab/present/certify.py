"""A certification as words: the terminal table ``lab certify`` prints, its Markdown
(``certification.md``), and the certified line beside each attacked radius of a robustness
report (``lab eval --certify``). Every number is read from the reports; nothing is computed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.core.io import atomic_open
from lab.core.text import num, pct, secs
from lab.present.text import eps_label, model_title, norm_name

if TYPE_CHECKING:
    from lab.evaluation.certify import CertificationReport
    from lab.evaluation.report import RobustnessReport

CERT_JSON = "certification.json"
CERT_MD = "certification.md"
METHOD_TITLES = {"ibp": "IBP", "crown-ibp": "CROWN-IBP", "crown": "CROWN", "smoothing": "randomized smoothing"}


def method_title(method: str) -> str:
    return METHOD_TITLES.get(method, method)


def certification_rows(cert: CertificationReport) -> list[list[str]]:
    if cert.method == "smoothing":  # one sampling certifies every radius: a radius per image
        rows = [["radius", "smoothed clean acc", "certified acc"]]
        return rows + [[eps_label(cert, r.eps), pct(r.clean_accuracy), pct(r.certified_accuracy)]  # type: ignore[arg-type]
                       for r in cert.results]  # fmt: skip
    rows = [["eps", "clean acc", "certified acc", "median worst margin", "time"]]
    for r in cert.results:
        rows.append([eps_label(cert, r.eps), pct(r.clean_accuracy), pct(r.certified_accuracy),  # type: ignore[arg-type]
                     num(r.median_margin), f"{r.seconds:.2f}s"])  # fmt: skip
    return rows


def _setup(cert: CertificationReport) -> str:
    meta = cert.meta or {}
    if cert.method == "smoothing":
        return (f"sigma {num(meta.get('sigma'))}, n0 {meta.get('n0')}, n {meta.get('n_samples')}, alpha "
                f"{num(meta.get('alpha'))}: each certificate holds with probability >= 1 - alpha")  # fmt: skip
    return "bound propagation: each certificate is a proof"


def certification_table(cert: CertificationReport) -> str:
    """Aligned text: one line per radius, and what the numbers mean."""
    rows = certification_rows(cert)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))) for row in rows]
    head = (f"{model_title(cert)}  {norm_name(cert.norm)}  n={cert.n}  certified by "  # type: ignore[arg-type]
            f"{method_title(cert.method)}  clean accuracy {pct(cert.clean_accuracy)}  ({_setup(cert)}; "
            f"{cert.seconds:.1f} s)")  # fmt: skip
    return "\n".join([head, "", *lines, "", certified_sentence(cert)])


def certified_sentence(cert: CertificationReport) -> str:
    best = cert.results[-1]
    return (f"Certified accuracy {pct(best.certified_accuracy)} at {norm_name(cert.norm)} "
            f"{'radius' if cert.method == 'smoothing' else 'eps'} {eps_label(cert, best.eps)} "  # type: ignore[arg-type]
            f"({method_title(cert.method)}, n={cert.n}): a lower bound; attacks give the upper bound.")  # fmt: skip


def certification_markdown(cert: CertificationReport) -> str:
    m = cert.model or {}
    data = (cert.meta or {}).get("data") or {}
    lines = [f"# Certification: {model_title(cert)}", ""]  # type: ignore[arg-type]
    examples = str(cert.n)
    if data.get("split"):
        examples += (f" ({data.get('dataset', '')} {data['split']} images "
                     f"{data.get('index_start')}..{int(data.get('index_stop', 0)) - 1})")  # fmt: skip
    facts = [("model", f"{m.get('arch', '?')} ({m.get('dataset', '?')})" + (f", run `{m['run']}`" if m.get("run") else "")),
             ("method", f"{method_title(cert.method)} ({_setup(cert)})"), ("threat model", norm_name(cert.norm)),
             ("examples", examples),
             ("clean accuracy", pct(cert.clean_accuracy)), ("time", secs(cert.seconds))]  # fmt: skip
    lines += [f"- **{k}**: {v}" for k, v in facts] + ["", f"**{certified_sentence(cert)}**", ""]
    rows = certification_rows(cert)
    lines += ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    if cert.method == "smoothing":
        lines += ["", "An image is certified at a radius when the smoothed classifier (the base model's most likely "
                  "class under Gaussian noise) is correct and its certified L2 radius, sigma * Phi^-1(pA) with pA "
                  "a Clopper-Pearson lower bound, is at least that radius (Cohen et al. 2019).", ""]
    else:
        lines += ["", "An image is certified when it is classified correctly and every lower bound of its logit "
                  "margins over the whole ball is positive: no perturbation of that size can change its class.", ""]
    return "\n".join(lines)


def write_certification(cert: CertificationReport, out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """certification.json and certification.md in ``out_dir``, each atomically."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / CERT_JSON, "markdown": out / CERT_MD}
    cert.save(paths["json"])
    with atomic_open(paths["markdown"], "w") as fh:
        fh.write(certification_markdown(cert))
    return paths


def certified_at(report: RobustnessReport, eps: float) -> dict[str, Any] | None:
    """The certified result of a robustness report at ``eps`` (``lab eval --certify``), or None."""
    for r in (report.certification or {}).get("results", []):
        if abs(float(r["eps"]) - eps) < 1e-12:
            return dict(r)
    return None


def certified_label(report: RobustnessReport) -> str:
    return f"certified ({method_title(str((report.certification or {}).get('method', '?')))}, lower bound)"
