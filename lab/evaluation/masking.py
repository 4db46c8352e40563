"""Automatic gradient-masking checks (Athalye et al. 2018; Carlini et al. 2019, "On
Evaluating Adversarial Robustness"), run on a probe of correctly classified examples.

Each check is reported passed (``True``), failed (``False``) or not run (``None``: it
could not run, so it guards nothing), with a sentence saying what it compared and the
numbers behind it. ``eps`` below is the report's largest epsilon; every attack runs
with the same ``seed``. Each check that runs can fail in every run it reports on:

* ``large-eps``: PGD-20 allowed to move every pixel anywhere (L-inf 1.0, L2 the image
  diameter) must leave at most :data:`LARGE_EPS_MAX_ACC` accuracy; if it does not,
  gradients are not guiding it;
* ``monotonic``: accuracy must not rise as epsilon grows, on two ladders: PGD-20 on the
  probe at :data:`MONOTONIC_LADDER` times ``eps`` (``eps/8, eps/4, eps/2, eps``) and then
  at the large epsilon above, and the report's own worst-case robust accuracy per
  epsilon. A rise counts when it exceeds :data:`MONOTONIC_TOL`;
* ``iterative-beats-single-step``: at ``eps``, PGD-20 must leave at most FGSM's
  accuracy plus :data:`SINGLE_STEP_TOL`;
* ``more-steps-change-little``: at ``eps``, PGD with 5x the steps, 5 restarts and the
  margin loss (which does not saturate with the softmax) must not be stronger than
  PGD-20 by more than :data:`MORE_STEPS_TOL` (if it is, the cheap numbers were not
  converged, or the cross-entropy gradient vanished);
* ``black-box-not-better``: at ``eps``, a score-based black-box attack (Square, 1,000
  queries), which sees strictly less than the white-box attacks, must not beat the best
  of them by more than :data:`BLACK_BOX_TOL`. Not run when no ``square`` attack is
  registered or it cannot be loaded.

Every tolerance is at least :data:`SLACK_EXAMPLES` example of the set compared (on a
probe of 32, one example is 3.1 points). With no correctly classified example to probe
with, every check is "not run".
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from attacks import ATTACKS
from lab.core.distributed import Dist
from lab.core.errors import LabError
from lab.core.progress import progress as progress_bar
from lab.evaluation.report import MaskingCheck, RobustnessReport
from lab.evaluation.verify import run_attack_on

#: tolerances, in accuracy fractions
LARGE_EPS_MAX_ACC = 0.02
MONOTONIC_TOL = 0.005
SINGLE_STEP_TOL = 0.01
MORE_STEPS_TOL = 0.03
BLACK_BOX_TOL = 0.02
#: every tolerance is at least this many examples of the set compared (the probe, or the
#: report's examples): on a small probe one example is several points, and is noise
SLACK_EXAMPLES = 1

#: the monotonic check's own epsilons, as fractions of the report's largest epsilon
MONOTONIC_LADDER = (1 / 8, 1 / 4, 1 / 2, 1.0)
#: the attacks the checks run: PGD-20 (CE), its strong version, Square's query budget
PGD_STEPS = 20
STRONG_STEPS, STRONG_RESTARTS = 100, 5
SQUARE_QUERIES = 1000

CHECK_NAMES = ("large-eps", "monotonic", "iterative-beats-single-step", "more-steps-change-little",
               "black-box-not-better")  # fmt: skip


def _acc_after(model: nn.Module, name: str, x: torch.Tensor, y: torch.Tensor, eps: float, norm: str,
               batch_size: int, ranks: Dist | None = None, **settings: Any) -> float:  # fmt: skip
    attack = ATTACKS.get(name)(eps=eps, norm=norm, **settings)
    idx = torch.arange(len(y), device=x.device)
    fooled, _ = run_attack_on(model, attack, x, y, idx, batch_size, ranks=ranks)
    return 1.0 - float(fooled.float().mean()) if len(y) else float("nan")


def large_eps_value(norm: str, x: torch.Tensor) -> float:
    return 1.0 if norm == "linf" else math.sqrt(x[0].numel())


def _p(v: float) -> str:
    return f"{100 * v:.1f}%"


def _rises(points: list[tuple[float, float]], tol: float) -> list[tuple[tuple[float, float], tuple[float, float]]]:
    """Consecutive (eps, accuracy) pairs where accuracy rose by more than ``tol``."""
    return [(a, b) for a, b in zip(points, points[1:]) if b[1] > a[1] + tol]


def _tolerance(base: float, n: int) -> float:
    """``base``, or :data:`SLACK_EXAMPLES` examples of ``n`` when that is more."""
    return max(base, SLACK_EXAMPLES / n) if n else base


def _fraction_of_eps(f: float) -> str:
    """1 -> ``eps``, 0.125 -> ``eps/8``, 0.3 -> ``0.3*eps``."""
    if f == 1:
        return "eps"
    inverse = 1 / f
    return f"eps/{round(inverse)}" if abs(inverse - round(inverse)) < 1e-9 else f"{f:g}*eps"


def _not_run(name: str, why: str) -> MaskingCheck:
    return MaskingCheck(name, None, f"not run: {why}", {})


def run_checks(model: nn.Module, x_ok: torch.Tensor, y_ok: torch.Tensor, report: RobustnessReport, *,
               norm: str, probe_n: int = 200, batch_size: int = 500, progress: bool = False,
               seed: int = 0, precision: str | None = None, ranks: Dist | None = None) -> list[MaskingCheck]:  # fmt: skip
    """The five checks on the first ``probe_n`` correctly classified examples ``x_ok``
    [N,C,H,W] (labels ``y_ok`` [N]), against the numbers in ``report``; see the module
    docstring for what each compares. ``seed``: every attack's seed; ``precision``: the
    gradient attacks' steering precision (auto | fp32 | bf16; default: their own, auto).
    ``ranks``: under ``torchrun``, every rank calls this alike and the probe's attacks are
    split across them (the same checks as one process's). Returns one :class:`MaskingCheck` per check."""
    x, y = x_ok[:probe_n], y_ok[:probe_n]
    n = len(y)
    if n == 0:
        return [_not_run(c, "no correctly classified example to probe with") for c in CHECK_NAMES]
    eps = max(report.eps)
    big = large_eps_value(norm, x)
    ladder = [f * eps for f in MONOTONIC_LADDER]
    bar = progress_bar(total=len(ladder) + 4, desc="masking checks", unit="check", enabled=progress)

    def acc(name: str, e: float, **settings: Any) -> float:
        if precision is not None and name != "square":
            settings["precision"] = precision
        value = _acc_after(model, name, x, y, e, norm, batch_size, ranks, seed=seed, **settings)
        bar.update(1)
        return value

    checks: list[MaskingCheck] = []
    acc_big = acc("pgd", big, steps=PGD_STEPS)
    big_tol = _tolerance(LARGE_EPS_MAX_ACC, n)
    checks.append(MaskingCheck(
        "large-eps", acc_big <= big_tol,
        f"PGD-{PGD_STEPS} at eps {big:.3g} (every pixel free) leaves {_p(acc_big)} of the probe (n={n}) "
        f"correct; it must leave <= {100 * big_tol:.3g}%",
        {"eps": big, "accuracy": acc_big, "probe": n, "max_accuracy": big_tol},
    ))  # fmt: skip

    ladder_acc = [acc("pgd", e, steps=PGD_STEPS) for e in ladder]
    acc_pgd = ladder_acc[-1]  # PGD-20 at eps, shared with the next two checks
    probe_points = list(zip(ladder, ladder_acc)) + [(big, acc_big)]
    probe_tol = _tolerance(MONOTONIC_TOL, n)
    report_points = [(r.eps, r.robust_accuracy) for r in report.results]
    report_tol = _tolerance(MONOTONIC_TOL, report.n)
    rises = [("probe", a, b) for a, b in _rises(probe_points, probe_tol)]
    rises += [("report", a, b) for a, b in _rises(report_points, report_tol)]
    ladder_text = ", ".join(f"{_p(a)} at {e:.3g}" for e, a in probe_points)
    report_text = ", ".join(f"{_p(a)} at {e:.3g}" for e, a in report_points)
    verdict = ("no rise" if not rises else "accuracy RISES with epsilon: " + "; ".join(
        f"{where} {_p(a[1])} at {a[0]:.3g} -> {_p(b[1])} at {b[0]:.3g}" for where, a, b in rises))  # fmt: skip
    checks.append(MaskingCheck(
        "monotonic", not rises,
        f"PGD-{PGD_STEPS} on the probe (n={n}) at {', '.join(_fraction_of_eps(f) for f in MONOTONIC_LADDER)} "
        f"and {big:.3g}: {ladder_text}; "
        f"report worst case (n={report.n}): {report_text}; {verdict} "
        f"(a rise counts above {100 * probe_tol:.3g} points on the probe, {100 * report_tol:.3g} on the report)",
        {"ladder_eps": [e for e, _ in probe_points], "ladder_accuracy": [a for _, a in probe_points],
         "eps": [e for e, _ in report_points], "accuracy": [a for _, a in report_points], "probe": n,
         "probe_tolerance": probe_tol, "report_tolerance": report_tol},
    ))  # fmt: skip

    acc_fgsm = acc("fgsm", eps)
    step_tol = _tolerance(SINGLE_STEP_TOL, n)
    checks.append(MaskingCheck(
        "iterative-beats-single-step", acc_pgd <= acc_fgsm + step_tol,
        f"at eps {eps:.3g} on the probe (n={n}): FGSM leaves {_p(acc_fgsm)}, PGD-{PGD_STEPS} {_p(acc_pgd)}; "
        f"PGD must leave <= FGSM + {100 * step_tol:.3g} points",
        {"eps": eps, "fgsm": acc_fgsm, "pgd20": acc_pgd, "probe": n, "tolerance": step_tol},
    ))  # fmt: skip

    acc_strong = acc("pgd", eps, steps=STRONG_STEPS, restarts=STRONG_RESTARTS, loss="margin")
    strong = f"PGD-{STRONG_STEPS}x{STRONG_RESTARTS} (margin)"
    steps_tol = _tolerance(MORE_STEPS_TOL, n)
    checks.append(MaskingCheck(
        "more-steps-change-little", acc_pgd - acc_strong <= steps_tol,
        f"at eps {eps:.3g} on the probe (n={n}): PGD-{PGD_STEPS} leaves {_p(acc_pgd)}, {strong} {_p(acc_strong)}; "
        f"the stronger attack may gain <= {100 * steps_tol:.3g} points",
        {"eps": eps, "pgd20": acc_pgd, "pgd100x5_margin": acc_strong, "probe": n, "tolerance": steps_tol},
    ))  # fmt: skip

    white = min(acc_fgsm, acc_pgd, acc_strong)
    try:
        acc_sq = acc("square", eps, n_queries=SQUARE_QUERIES) if "square" in ATTACKS else None
    except LabError as exc:  # e.g. the AutoAttack package is not installed
        checks.append(_not_run("black-box-not-better", f"the square attack could not run ({exc})"))
    else:
        if acc_sq is None:
            checks.append(_not_run("black-box-not-better", "no square attack registered"))
        else:
            box_tol = _tolerance(BLACK_BOX_TOL, n)
            checks.append(MaskingCheck(
                "black-box-not-better", acc_sq >= white - box_tol,
                f"at eps {eps:.3g} on the probe (n={n}): Square ({SQUARE_QUERIES} queries) leaves {_p(acc_sq)}, "
                f"the best white-box attack {_p(white)}; Square may beat it by <= {100 * box_tol:.3g} points",
                {"eps": eps, "square": acc_sq, "white_box": white, "probe": n, "tolerance": box_tol},
            ))  # fmt: skip
    bar.close()
    return checks
