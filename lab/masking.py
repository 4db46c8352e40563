"""Automatic gradient-masking checks (Athalye et al. 2018; Carlini et al. 2019, "On
Evaluating Adversarial Robustness"), run on a probe of correctly classified examples.

Each check is reported passed or failed with the numbers behind it:

* ``large-eps``: an attack allowed to move every pixel anywhere (L-inf 1.0, L2 the
  image diameter) must reach ~0% accuracy; if it does not, gradients are not guiding it;
* ``monotonic``: worst-case accuracy must not rise as epsilon grows;
* ``iterative-beats-single-step``: PGD must do at least as well as FGSM;
* ``more-steps-change-little``: PGD with 5x the steps and 5 restarts must not be much
  stronger than PGD-20 (if it is, the cheap numbers were not converged);
* ``black-box-not-better``: a score-based black-box attack (Square) must not beat the
  white-box attacks, which see strictly more.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from attacks import ATTACKS, make_threat
from lab.report import MaskingCheck, RobustnessReport

#: tolerances, in accuracy fractions
LARGE_EPS_MAX_ACC = 0.02
MONOTONIC_TOL = 0.005
SINGLE_STEP_TOL = 0.01
MORE_STEPS_TOL = 0.03
BLACK_BOX_TOL = 0.02


def _acc_after(model: nn.Module, name: str, x: torch.Tensor, y: torch.Tensor, eps: float, norm: str,
               batch_size: int, **settings: Any) -> float:  # fmt: skip
    from lab.evaluation import run_attack_on

    attack = ATTACKS.get(name)(eps=eps, norm=norm, **settings)
    idx = torch.arange(len(y), device=x.device)
    fooled, _ = run_attack_on(model, attack, x, y, idx, batch_size)
    return 1.0 - float(fooled.float().mean()) if len(y) else float("nan")


def large_eps_value(norm: str, x: torch.Tensor) -> float:
    return 1.0 if norm == "linf" else math.sqrt(x[0].numel())


def run_checks(model: nn.Module, x_ok: torch.Tensor, y_ok: torch.Tensor, report: RobustnessReport, *,
               norm: str, probe_n: int = 200, batch_size: int = 500,
               progress: bool = False) -> list[MaskingCheck]:  # fmt: skip
    """The five checks on the first ``probe_n`` correctly classified examples ``x_ok``."""
    x, y = x_ok[:probe_n], y_ok[:probe_n]
    checks: list[MaskingCheck] = []
    eps = max(report.eps)
    if len(y) == 0:
        return [MaskingCheck("probe", False, "no correctly classified example to probe with", {})]
    n = len(y)

    big = large_eps_value(norm, x)
    make_threat(norm, big)
    acc_big = _acc_after(model, "pgd", x, y, big, norm, batch_size, steps=20)
    checks.append(MaskingCheck(
        "large-eps", acc_big <= LARGE_EPS_MAX_ACC,
        f"PGD-20 at eps {big:.3g} leaves {100 * acc_big:.1f}% accuracy (must be <= {100 * LARGE_EPS_MAX_ACC:.0f}%)",
        {"eps": big, "accuracy": acc_big, "probe": n},
    ))  # fmt: skip

    accs = [(r.eps, r.robust_accuracy) for r in report.results]
    rises = [(a, b) for a, b in zip(accs, accs[1:]) if b[1] > a[1] + MONOTONIC_TOL]
    checks.append(MaskingCheck(
        "monotonic", not rises,
        "accuracy falls as epsilon grows" if not rises else
        "accuracy rises with epsilon: " + "; ".join(f"{100*a[1]:.1f}% at {a[0]:g} -> {100*b[1]:.1f}% at {b[0]:g}"
                                                    for a, b in rises),
        {"eps": [e for e, _ in accs], "accuracy": [a for _, a in accs]},
    ))  # fmt: skip

    acc_fgsm = _acc_after(model, "fgsm", x, y, eps, norm, batch_size)
    acc_pgd = _acc_after(model, "pgd", x, y, eps, norm, batch_size, steps=20)
    checks.append(MaskingCheck(
        "iterative-beats-single-step", acc_pgd <= acc_fgsm + SINGLE_STEP_TOL,
        f"at eps {eps:g}: FGSM {100 * acc_fgsm:.1f}%, PGD-20 {100 * acc_pgd:.1f}%",
        {"eps": eps, "fgsm": acc_fgsm, "pgd20": acc_pgd, "probe": n},
    ))  # fmt: skip

    acc_strong = _acc_after(model, "pgd", x, y, eps, norm, batch_size, steps=100, restarts=5, loss="margin")
    checks.append(MaskingCheck(
        "more-steps-change-little", acc_pgd - acc_strong <= MORE_STEPS_TOL,
        f"at eps {eps:g}: PGD-20 {100 * acc_pgd:.1f}%, PGD-100x5 (margin) {100 * acc_strong:.1f}%",
        {"eps": eps, "pgd20": acc_pgd, "pgd100x5_margin": acc_strong, "probe": n},
    ))  # fmt: skip

    if "square" in ATTACKS:
        acc_sq = _acc_after(model, "square", x, y, eps, norm, batch_size, n_queries=1000)
        white = min(acc_fgsm, acc_pgd, acc_strong)
        checks.append(MaskingCheck(
            "black-box-not-better", acc_sq >= white - BLACK_BOX_TOL,
            f"at eps {eps:g}: Square (1000 queries) {100 * acc_sq:.1f}%, best white-box {100 * white:.1f}%",
            {"eps": eps, "square": acc_sq, "white_box": white, "probe": n},
        ))  # fmt: skip
    else:
        checks.append(MaskingCheck("black-box-not-better", True, "skipped: no square attack registered", {}))
    return checks
