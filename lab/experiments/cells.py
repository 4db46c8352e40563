"""Running one cell: the same Python API as ``lab train``, ``lab eval`` and ``lab explain --metrics``.

:func:`run_cell` computes a cell into a work folder and returns a :class:`Outcome`: the
summary the store records and the ``(metric, eps, value)`` numbers its tables aggregate.
It never touches the store; the engine that called it hands the outcome to the driver,
which alone writes the store (:mod:`lab.experiments.sweep`).

* ``train``: :func:`lab.training.loop.train` of the resolved recipe into the work folder;
  a work folder that already holds a training state (a cell interrupted mid-training) is
  resumed from its last finished epoch. Values: ``test_acc``, ``train_seconds``; the result
  keeps the catastrophic-overfitting guard's events (a rollback, a stop).
* ``run``: an existing run, checked and read; values: ``test_acc`` from its record.
* ``evaluate``: :func:`lab.runs.evaluate.evaluate_plan` on the model cell's checkpoint,
  ``report.json`` in the work folder. Values: ``clean_accuracy``, per radius
  ``robust_accuracy`` (the per-image worst case over every attack and threat row) and each
  row's own ``robust_accuracy[<row>]``, ``masking_failed`` (the number of failed checks),
  ``upper_bound_only`` (1 when only weak attacks ran).
* ``explain``: :func:`explain.quality.quality_table` for one method on the first ``n`` test
  images, ``quality.json`` and the clean maps (``maps.npy``, [N, 1 or C, H, W]). Values:
  ``deletion_auc``, ``insertion_auc``, the random map's, ``infidelity``, ``sensitivity``,
  ``sanity_spearman`` and, under attack, ``attack_spearman``, ``attack_top_k_iou``, ``attack_ssim``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from explain.quality import build_explainer, quality_table
from lab.core.errors import LabError
from lab.core.io import atomic_path, atomic_write_json
from lab.core.runtime import pick_device, set_threads
from lab.data.pixels import to_float
from lab.evaluation.report import jsonable
from lab.runs.evaluate import evaluate_plan, plan_eval
from lab.runs.samples import from_test_set
from lab.training.checkpoint import load_model
from lab.training.config import from_dict
from lab.training.loop import train

log = logging.getLogger(__name__)

ValueRow = tuple[str, float | None, float | None]


@dataclass
class Outcome:
    """What a finished cell hands back: ``result`` (a JSON summary), ``values`` and its time."""

    result: dict[str, Any]
    values: list[ValueRow] = field(default_factory=list)
    seconds: float = 0.0


@dataclass(frozen=True)
class Where:
    """Where a cell runs: its work folder, the folders of the cells it depends on (by key),
    the device, torch threads (0: torch's default), the data folder, progress bars or not."""

    work: Path
    deps: Mapping[str, Path]
    device: str = "auto"
    threads: int = 0
    data_dir: str = ""
    progress: bool = True


def run_cell(cell: Mapping[str, Any], where: Where) -> Outcome:
    """Compute ``cell`` (a :meth:`lab.experiments.spec.Cell.to_dict`) in ``where.work``."""
    t0 = time.perf_counter()
    set_threads(where.threads)
    where.work.mkdir(parents=True, exist_ok=True)
    kind = cell["kind"]
    runner = {"train": _train, "run": _existing, "evaluate": _evaluate, "explain": _explain}.get(kind)
    if runner is None:
        raise LabError(f"unknown cell kind {kind!r}")
    result, values = runner(cell, where)
    return Outcome(result=jsonable(result), values=values, seconds=round(time.perf_counter() - t0, 3))


def _dep(cell: Mapping[str, Any], where: Where) -> Path:
    (key,) = cell["deps"]
    return where.deps[key]


def _train(cell: Mapping[str, Any], where: Where) -> tuple[dict[str, Any], list[ValueRow]]:
    recipe = dict(cell["settings"]["recipe"])
    overrides = [f"runtime.device={where.device}", f"runtime.threads={where.threads}"]
    if where.data_dir:
        overrides.append(f"data.data_dir={where.data_dir}")
    classifier = str(recipe.get("denoiser", {}).get("classifier") or "")
    if classifier.startswith("@"):
        overrides.append(f"denoiser.classifier={where.deps[classifier[1:]]}")
    cfg = from_dict(recipe, overrides)
    resume = (where.work / "train_state.safetensors").is_file()
    if resume:
        log.info("resuming %s from its last finished epoch", cell["label"])
    res = train(cfg if not resume else None, where.work, resume=resume, overrides=tuple(overrides),
                progress=where.progress)  # fmt: skip
    m = res.metrics
    record = json.loads((where.work / "model.json").read_text(encoding="utf-8"))
    result = {"test_acc": m.get("test_acc"), "epochs": len(res.history), "wall_time_s": res.wall_time_s,
              "device": str(next(res.model.parameters()).device), "resumed": resume,
              "guard_events": (record.get("defense") or {}).get("guard_events", [])}  # fmt: skip
    return result, [("test_acc", None, m.get("test_acc")), ("train_seconds", None, res.wall_time_s)]


def _existing(cell: Mapping[str, Any], where: Where) -> tuple[dict[str, Any], list[ValueRow]]:
    ckpt = load_model(cell["settings"]["run"])
    acc = ckpt.metrics.get("test_acc")
    atomic_write_json(where.work / "source.json", {"run": cell["settings"]["run"]})
    return {"test_acc": acc, "run": cell["settings"]["run"]}, [("test_acc", None, acc)]


def model_folder(cell: Mapping[str, Any], folder: Path) -> Path:
    """The run folder a model cell stands for: its own folder, or the existing run it names."""
    if cell["kind"] == "run":
        return Path(cell["settings"]["run"])
    return folder


def _evaluate(cell: Mapping[str, Any], where: Where) -> tuple[dict[str, Any], list[ValueRow]]:
    s = cell["settings"]
    plan = plan_eval(s["suite"], s["attacks"], s["eps"], s["norm"])
    ckpt = load_model(_dep(cell, where), pick_device(where.device))
    report = evaluate_plan(ckpt, plan, n=s["n"], offset=s["offset"], batch_size=s["batch_size"], checks=s["checks"],
                           probe_n=s["probe_n"], data_dir=where.data_dir or None, progress=where.progress,
                           precision=s["precision"])  # fmt: skip
    report.save(where.work / "report.json")
    values: list[ValueRow] = [("clean_accuracy", None, report.clean_accuracy)]
    for r in report.results:
        values.append(("robust_accuracy", r.eps, r.robust_accuracy))
        values += [(f"robust_accuracy[{row}]", r.eps, acc) for row, acc in r.rows.items()] if len(r.rows) > 1 else []
    values.append(("masking_failed", None, float(len(report.failed_checks))))
    values.append(("upper_bound_only", None, float(bool(report.headline.get("upper_bound_only")))))
    values.append(("eval_seconds", None, report.seconds))
    result = {"clean_accuracy": report.clean_accuracy, "n": report.n, "headline": report.headline,
              "checks": {c.name: c.status for c in report.checks}, "warnings": report.warnings,
              "seconds": report.seconds}  # fmt: skip
    return result, values


def _explain(cell: Mapping[str, Any], where: Where) -> tuple[dict[str, Any], list[ValueRow]]:
    s = cell["settings"]
    ckpt = load_model(_dep(cell, where), pick_device(where.device))
    samples = from_test_set(ckpt.info, s["n"], s["offset"], where.data_dir or None)
    device = next(ckpt.model.parameters()).device
    x = to_float(samples.x, device)
    assert samples.y is not None
    y = torch.as_tensor(samples.y).to(device, torch.int64)
    method = s["method"]
    table = quality_table(ckpt.model, x, y, [method], quick=s["quick"], attack=s["attack"], eps=s["eps"],
                          norm=s["norm"], steps=s["steps"])  # fmt: skip
    row = table[method]
    maps = build_explainer(method, quick=s["quick"])(ckpt.model, x).detach().float().cpu().numpy()
    with atomic_path(where.work / "maps.npy") as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, maps.astype(np.float32))
    atomic_write_json(where.work / "quality.json", jsonable({"method": method, "images": samples.names, **row}))
    values: list[ValueRow] = [(k, None, row[k]) for k in ("deletion_auc", "insertion_auc", "random_deletion_auc",
                                                          "random_insertion_auc", "infidelity", "sensitivity")]  # fmt: skip
    values.append(("sanity_spearman", None, row["sanity"]["final_spearman"]))
    values.append(("sanity_passed", None, float(bool(row["sanity"]["passed"]))))
    ua = row.get("under_attack")
    if ua:
        values += [(f"attack_{k}", s["eps"], ua[k]) for k in ("spearman", "top_k_iou", "ssim")]
        values.append(("attack_accuracy", s["eps"], ua["adv_accuracy"]))
    return {"method": method, **row}, values
