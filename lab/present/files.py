"""The files a report or an attack run leaves behind, each written atomically:
``report.json`` + ``report.md`` + ``accuracy_vs_eps.png`` for ``lab eval``, and the clean /
adversarial / perturbation PNGs + ``attack.json`` for ``lab attack``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from lab.core.io import atomic_open, atomic_write_json
from lab.present.figures import perturbation_image, plot_accuracy_vs_eps, save_png
from lab.present.markdown import report_markdown

if TYPE_CHECKING:
    from lab.evaluation.report import RobustnessReport
    from lab.runs.attack import AttackRunResult

REPORT_JSON = "report.json"
REPORT_MD = "report.md"
REPORT_PLOT = "accuracy_vs_eps.png"
ATTACK_JSON = "attack.json"


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
