"""Evaluate a saved model on its own test set: what ``lab eval`` and the dashboard call.

Two steps, so that a bad request fails before anything is loaded:

* :func:`plan_eval` checks the request once: the epsilons against the threat model
  (:func:`lab.core.epsilon.check_eps`) and the attacks (a suite plus extra names, each once);
* :func:`evaluate_plan` runs it on a checkpoint: the default epsilon for the data when none
  was given (:func:`lab.core.epsilon.default_eps`), the first ``n`` test images from
  ``offset`` (verified to be the data the model was trained on), then
  :func:`lab.evaluation.engine.evaluate`, recording the model and the data indices in the report;
  under ``torchrun`` (``ranks``) split across the ranks, with one process's result.

``evaluate_checkpoint(load_model("runs/x"), suite="quick", eps=[0, 0.1, 0.3])`` does both.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from defenses.detectors.saved import refuse_guarded
from lab.core.distributed import Dist
from lab.core.epsilon import check_eps, default_eps
from lab.core.errors import LabError
from lab.data.pixels import to_float
from lab.evaluation.certify import CertificationReport, certify, sandwich_check
from lab.evaluation.engine import AttackSpec, as_spec, evaluate
from lab.evaluation.report import RobustnessReport
from lab.evaluation.suites import suite_specs
from lab.runs.certify import check_request, model_meta
from lab.runs.samples import from_test_set
from lab.training.checkpoint import Checkpoint

DEFAULT_SUITE = "quick"


@dataclass(frozen=True)
class EvalPlan:
    """An evaluation request, checked: which attacks at which epsilons under which norm.

    ``specs``: the suite's attacks plus the extra ones, each once; ``suite``: the suite's
    name (``quick`` when neither a suite nor an attack was named, None for attacks only);
    ``attacks``: the extra attack names as given; ``eps``: sorted, de-duplicated and checked
    against ``norm``, or None for the data's default radius.
    """

    specs: tuple[AttackSpec, ...]
    suite: str | None
    attacks: tuple[str, ...]
    eps: tuple[float, ...] | None
    norm: str
    certify: str | None = None  # a certification method (lab.models.bounds.METHODS) to add a certified row


def eval_specs(suite: str | None, attacks: Sequence[str] = ()) -> tuple[list[AttackSpec], str | None]:
    """The attack specs to run: ``suite``'s (``quick`` when neither is given) plus ``attacks``.

    Returns ``(specs, suite)``; an attack already in the suite is not added twice.
    """
    if not suite and not attacks:
        suite = DEFAULT_SUITE
    specs = suite_specs(suite) if suite else []
    for name in attacks:
        spec = as_spec(name)
        if spec not in specs:
            specs.append(spec)
    return specs, suite


def plan_eval(suite: str | None = None, attacks: Sequence[str] = (), eps: Sequence[float] | None = None,
              norm: str = "linf", certify: str | None = None) -> EvalPlan:  # fmt: skip
    """Check an evaluation request before any model or data is loaded (LabError otherwise):
    the epsilons first (negative, or above the data range of ``norm``), then the suite and
    attack names, then the certification method (L-inf only). The L2 bound that depends on the
    image size is the evaluator's check."""
    checked = tuple(check_eps(list(eps), norm)) if eps is not None else None
    specs, suite = eval_specs(suite, attacks)
    if certify == "smoothing":
        raise LabError("lab eval --certify takes a bound method (ibp, crown-ibp, crown): the attacks hit the base "
                       "model, not the smoothed classifier that smoothing certifies; use lab certify --method smoothing")
    if certify:
        check_request(None, certify, norm)
    return EvalPlan(specs=tuple(specs), suite=suite, attacks=tuple(attacks), eps=checked, norm=norm,
                    certify=certify or None)  # fmt: skip


def eval_name(suite: str | None, attacks: Sequence[str], norm: str) -> str:
    """Folder name of a report: ``quick-linf``, ``pgd+fgsm-l2``, ``quick+square-linf``."""
    parts = ([suite] if suite else []) + [a for a in attacks if a != suite]
    name = "+".join(dict.fromkeys(parts)) or DEFAULT_SUITE
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", f"{name}-{norm}")


def default_report_dir(checkpoint: Checkpoint, plan: EvalPlan) -> Path:
    """``RUN/eval/<suite or attacks>-<norm>`` next to the checkpoint."""
    return Path(checkpoint.path).parent / "eval" / eval_name(plan.suite, plan.attacks, plan.norm)


def evaluate_plan(
    checkpoint: Checkpoint,
    plan: EvalPlan,
    *,
    n: int = 1000,
    offset: int = 0,
    batch_size: int = 500,
    checks: bool = True,
    probe_n: int = 200,
    data_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    precision: str | None = None,
    ranks: Dist | None = None,
) -> RobustnessReport:
    """Run ``plan`` on ``checkpoint`` (a :class:`lab.training.checkpoint.Checkpoint`) with test
    images ``offset .. offset+n-1`` of its dataset; ``batch_size`` and ``probe_n`` are checked
    before any data is loaded. ``ranks``: under ``torchrun`` (after
    :func:`lab.core.distributed.join`), every rank calls this alike, attacks its share of the
    images and returns the whole report, equal to one process's. Returns a
    :class:`lab.evaluation.report.RobustnessReport`.
    """
    refuse_guarded(checkpoint.model, "lab eval", str(Path(checkpoint.path).parent))
    info = checkpoint.info
    eps_list = list(plan.eps) if plan.eps is not None else [default_eps(info, plan.norm)]
    if batch_size < 1:
        raise LabError(f"the attack batch size must be >= 1, got {batch_size}")
    if checks and probe_n < 1:
        raise LabError(f"the masking checks need at least 1 probe example, got {probe_n} (or turn the checks off)")
    samples = from_test_set(info, n, offset, data_dir)
    device = next(checkpoint.model.parameters()).device
    x = to_float(samples.x, device)
    assert samples.y is not None
    y = torch.from_numpy(samples.y).to(device)
    meta = model_meta(checkpoint)
    report = evaluate(checkpoint.model, x, y, list(plan.specs), eps_list, norm=plan.norm, batch_size=batch_size,
                      suite=plan.suite, checks=checks, probe_n=probe_n, progress=progress, model_meta=meta,
                      precision=precision, ranks=ranks)  # fmt: skip
    report.meta["data"] = {k: v for k, v in samples.source.items() if k != "from"}
    report.meta["data"]["source"] = samples.source.get("from")
    report.meta["eps_given"] = plan.eps is not None
    report.meta["checks"] = checks
    report.meta["probe_n"] = probe_n if checks else 0
    if plan.certify:
        add_certification(report, certify(checkpoint.model, x, y, eps_list, method=plan.certify,
                                          progress=progress, model_meta=meta))  # fmt: skip
    return report


def add_certification(report: RobustnessReport, cert: CertificationReport) -> None:
    """Put ``cert`` (made on the report's images) into ``report`` with the check that certified <=
    attacked, image by image; a failure of it is a bug and says so in the warnings too."""
    cert.meta["data"] = report.meta.get("data")
    report.certification = cert.to_dict()
    check = sandwich_check(cert, report)
    report.checks.append(check)
    if check.passed is False:
        report.warnings.append(check.detail)


def evaluate_checkpoint(
    checkpoint: Checkpoint,
    *,
    suite: str | None = None,
    attacks: Sequence[str] = (),
    eps: Sequence[float] | None = None,
    norm: str = "linf",
    n: int = 1000,
    offset: int = 0,
    batch_size: int = 500,
    checks: bool = True,
    probe_n: int = 200,
    data_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    precision: str | None = None,
    certify: str | None = None,
) -> RobustnessReport:
    """:func:`plan_eval` then :func:`evaluate_plan`: ``checkpoint`` under ``suite`` plus
    ``attacks`` at ``eps`` (default: the data's conventional radius for ``norm``); ``certify``:
    a certification method whose certified accuracy is added beside the attacked one."""
    plan = plan_eval(suite, attacks, eps, norm, certify)
    return evaluate_plan(checkpoint, plan, n=n, offset=offset, batch_size=batch_size, checks=checks, probe_n=probe_n,
                         data_dir=data_dir, progress=progress, precision=precision)  # fmt: skip
