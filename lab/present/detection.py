"""A detector's report as words: the terminal table ``lab detect`` prints and ``detection.md``.
Every number is read from the report; nothing is computed."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.core.io import atomic_open
from lab.core.text import num, pct, secs
from lab.evaluation.detection import DETECTION_FORMAT
from lab.runs.detect import detect_dir

if TYPE_CHECKING:
    from lab.evaluation.detection import DetectionReport

DETECT_JSON = "detection.json"
DETECT_MD = "detection.md"
COLUMNS = ["eps", "row", "attack", "ROC AUC", "detected at the threshold", "fools the classifier",
           "robust acc with rejection", "time"]  # fmt: skip


def _rows(rep: DetectionReport) -> list[list[str]]:
    out = []
    for r in rep.results:
        for row in r.rows:
            out.append([num(r.eps), row.row, row.attack, num(row.auc, 3), pct(row.detection_rate),
                        pct(row.fooled_classifier), pct(row.robust_with_rejection), f"{row.seconds:.1f}s"])  # fmt: skip
        out.append([num(r.eps), "worst case", "", "", "", "", pct(r.robust_with_rejection), ""])
    return out


def _head(rep: DetectionReport) -> str:
    m = rep.model or {}
    return (f"{rep.detector.get('title') or rep.detector.get('name')} protecting {m.get('arch', '?')} on "
            f"{m.get('dataset', '?')}  n={rep.n}  threshold {num(rep.threshold)} (FPR {pct(rep.fpr_target)} on "
            f"held-out clean images; {pct(rep.fpr_test)} on the test images)  clean accuracy {pct(rep.clean_accuracy)}, "
            f"{pct(rep.clean_accuracy_with_rejection)} with rejection")  # fmt: skip


def _names(res: Any) -> str:
    names = [r.row for r in res.rows]
    return " and ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)


def detection_table(rep: DetectionReport) -> str:
    rows = [COLUMNS, *_rows(rep)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.rjust(w) if i >= 3 else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()
             for row in rows]  # fmt: skip
    last = rep.results[-1]
    tail = (f"Robust accuracy with rejection {pct(last.robust_with_rejection)} at L-inf eps {num(last.eps)}: the "
            f"per-image worst case over the {_names(last)} attacks (an adversarial example succeeds "
            "only if it is misclassified and not detected).")  # fmt: skip
    return "\n".join([_head(rep), "", *lines, "", tail])


def detection_markdown(rep: DetectionReport) -> str:
    lines = [f"# Detection: {rep.detector.get('title') or rep.detector.get('name')}", "", _head(rep) + ".", ""]
    lines += ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(r) + " |" for r in _rows(rep)]
    lines += ["", "ROC AUC: clean test images the model classifies correctly against the adversarial examples "
              "that fool the classifier. Robust accuracy with rejection: the clean image is classified correctly and "
              "not rejected, and its adversarial example is classified correctly or rejected. The adaptive row "
              "attacks the classifier and the detector's score together (Carlini and Wagner 2017); adaptive-views "
              "(a detector that compares views of the input) makes the input and every view one wrong class "
              "(He et al. 2017).",
              "", f"Time: {secs(rep.seconds)}.", ""]  # fmt: skip
    return "\n".join(lines)


def write_detection(rep: DetectionReport, out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / DETECT_JSON, "markdown": out / DETECT_MD}
    rep.save(paths["json"])
    with atomic_open(paths["markdown"], "w") as fh:
        fh.write(detection_markdown(rep))
    return paths


def detection_file(run: str | os.PathLike[str], detector: str) -> Path:
    """The report ``lab detect`` writes by default for ``run`` guarded by ``detector``."""
    return detect_dir(run, detector) / DETECT_JSON


def load_detection(run: str | os.PathLike[str], detector: str) -> dict[str, Any] | None:
    """:func:`detection_file` of ``run`` and ``detector`` as a dict; None when there is none or it
    is not one (a summary shows what it can read)."""
    p = detection_file(run, detector)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) and data.get("format") == DETECTION_FORMAT else None
