"""The robustness evaluator: ``evaluate(model, x, y, attacks, eps) -> RobustnessReport``.

Per epsilon it runs the attacks from cheapest to most expensive on an **active set**: an
example leaves the set as soon as one attack fools it, so expensive attacks only run on
what survived the cheap ones (the AutoAttack pattern), and each gradient attack also
drops an example from its own batch the moment it is fooled. An example counts as robust
only if every attack failed on it; for a defended model, only if every attack of every
threat row (gray-box, white-box, BPDA, EOT) failed on it. That per-image worst case is
the robust accuracy, everywhere.

Transfer rows (gray-box: examples made on the bare classifier, judged on the defended
model) run every attack at full strength: no early stopping at the first iterate that
barely fools the surrogate, and the margin loss pushed on to a confidence of
:data:`TRANSFER_KAPPA` logits past the decision boundary (Carlini & Wagner's
high-confidence transfer examples), as the attack's ``transfer_settings`` say.

The evaluator verifies what it counts: every adversarial example an attack returns must
have the input's shape, be finite, lie in [0, 1] and inside the threat set (up to
:data:`VERIFY_ATOL`), or the evaluation stops with an error naming the attack; success is
then decided by the judged model itself in fp32 (:mod:`lab.evaluation.verify`, shared with
the masking checks).

Under ``torchrun`` (``ranks``) every rank runs this same evaluation on all the images, and
each attack call is split across the ranks and merged (:mod:`lab.evaluation.shards`), so
every rank ends with the report one process would have made on the same images (the
timings aside; a randomized model excepted, whose every prediction is a fresh draw).

Then it runs the automatic gradient-masking checks (:mod:`lab.evaluation.masking`) and picks the
headline: the robust accuracy at the largest epsilon, flagged as an upper bound when only
weak attacks produced it. The named suites of attack specs are in :mod:`lab.evaluation.suites`.
"""

from __future__ import annotations

import datetime as _dt
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from attacks import ATTACKS, Attack
from attacks.base import check_inputs
from defenses.denoisers.wrapper import ThreatRow, threat_rows
from lab.core.distributed import Dist
from lab.core.epsilon import check_eps
from lab.core.errors import LabError
from lab.core.progress import progress as progress_bar
from lab.core.runtime import effective_precision
from lab.core.settings import setting_names
from lab.evaluation.masking import run_checks
from lab.evaluation.report import AttackResult, EpsResult, RobustnessReport
from lab.evaluation.verify import VERIFY_ATOL, predict, run_attack_on

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AttackSpec:
    """An attack by registered name plus settings; built per epsilon by :meth:`build`."""

    name: str
    settings: dict[str, Any] = field(default_factory=dict)
    label: str = ""

    def build(self, eps: float, norm: str, *, transfer: bool = False, precision: str | None = None) -> Attack:
        """The attack at radius ``eps``. ``transfer``: with the attack's full-strength settings
        for a transfer row (its ``transfer_settings``). ``precision``: given to attacks that
        have a ``precision`` setting (the lab's gradient attacks), unless the spec sets one."""
        cls = ATTACKS.get(self.name)
        settings = dict(self.settings)
        if precision is not None and "precision" not in settings and "precision" in setting_names(cls):
            settings["precision"] = precision
        attack = cls(eps=eps, norm=norm, **settings)
        if transfer:
            extra = {k: v for k, v in attack.transfer_settings().items() if k not in self.settings}
            if extra:
                attack = cls(eps=eps, norm=norm, **{**settings, **extra})
        return attack

    @property
    def title(self) -> str:
        if self.label:
            return self.label
        s = self.settings
        text = self.name
        if "steps" in s:
            text += f"-{s['steps']}"
        if s.get("restarts", 1) > 1:
            text += f"x{s['restarts']}"
        if s.get("loss") not in (None, "ce"):
            text += f" ({s['loss']})"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "settings": dict(self.settings), "label": self.title}


#: an evaluation whose strongest attack costs less than this many passes is "weak"
STRONG_COST = 100


def as_spec(a: AttackSpec | str) -> AttackSpec:
    if isinstance(a, AttackSpec):
        return a
    ATTACKS.get(a)  # a clear error for an unknown name
    return AttackSpec(a)


def evaluate(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    attacks: Sequence[AttackSpec | str],
    eps: Sequence[float],
    *,
    norm: str = "linf",
    batch_size: int = 500,
    suite: str | None = None,
    checks: bool = True,
    probe_n: int = 200,
    progress: bool = True,
    model_meta: dict[str, Any] | None = None,
    rows: Sequence[ThreatRow] | None = None,
    precision: str | None = None,
    ranks: Dist | None = None,
) -> RobustnessReport:
    """Evaluate ``model`` on images ``x`` [N,C,H,W] in [0,1] with labels ``y`` [N].

    ``attacks``: registered names or :class:`AttackSpec`; run cheapest first on the set of
    examples no attack has fooled yet. ``eps``: the radii (in pixel units, 0 allowed).
    ``checks``: run the gradient-masking checks on up to ``probe_n`` correctly classified
    examples. ``rows``: who the attacks see (default :func:`threat_rows`: the model itself;
    for a denoised model gray-box, white-box, and BPDA / EOT where the defense needs them);
    every row runs every attack (transfer rows at full strength), the model itself judges,
    and each epsilon's robust accuracy is the per-image worst case over every row.
    ``precision``: the gradient attacks' steering precision (auto | fp32 | bf16; default:
    each attack's own, ``auto``). ``ranks``: this process's place under ``torchrun``; every
    rank calls this with the same arguments, attacks its share, and returns the whole report
    (write it from rank 0). Returns a :class:`RobustnessReport`.
    """
    if batch_size < 1:
        raise LabError(f"batch size must be >= 1, got {batch_size}")
    if precision is not None:
        effective_precision(precision)  # a LabError for an unknown name
    check_inputs(model, x, y, None)
    specs = [as_spec(a) for a in attacks]
    if not specs:
        raise LabError("no attack to run: give an attack name or a suite")
    eps_list = check_eps(eps, norm, tuple(x.shape[1:]))
    y = y.to(x.device, torch.int64)
    dd = ranks or Dist()
    progress = progress and dd.main
    t_all = time.perf_counter()

    # Build once at the largest epsilon to validate settings and order by cost.
    probe_eps = max(eps_list)
    built = [(s, s.build(probe_eps, norm, precision=precision)) for s in specs]
    built.sort(key=lambda p: p[1].cost)
    specs = [s for s, _ in built]

    clean_pred = predict(model, x, batch_size)
    clean_ok = clean_pred == y
    n = len(y)
    clean_acc = float(clean_ok.float().mean()) if n else float("nan")
    threat = list(rows) if rows is not None else threat_rows(model)
    if not threat:
        raise LabError("no threat row to evaluate")
    results: list[EpsResult] = []
    flags: list[str] = []
    nonzero = [e for e in eps_list if e > 0]
    total = sum(int(clean_ok.sum()) for _ in nonzero) * len(specs) * len(threat)
    bar = progress_bar(total=total, desc="attacking", unit="img", enabled=progress)
    for e in eps_list:
        t_eps = time.perf_counter()
        done: list[AttackResult] = []
        row_robust: dict[str, torch.Tensor] = {}
        for row in threat:
            robust = clean_ok.clone()
            if e > 0:
                for spec in specs:
                    attack = spec.build(e, norm, transfer=row.transfer, precision=precision)
                    idx = robust.nonzero().squeeze(1)
                    where = f" [{row.name}]" if len(threat) > 1 else ""
                    bar.set_description(f"eps {e:g} {spec.title}{where}")
                    t0 = time.perf_counter()
                    fooled, norms = run_attack_on(row.attacked, attack, x, y, idx, batch_size, bar, judge=model,
                                                  title=spec.title, ranks=dd)  # fmt: skip
                    dt = time.perf_counter() - t0
                    flags += [f"{spec.title}{where} at eps {e:g}: {m}" for m in attack.notes]
                    robust[idx[fooled]] = False
                    skipped = int(clean_ok.sum()) - len(idx)
                    bar.update(skipped)  # examples an earlier attack already fooled
                    f_norms = norms[fooled]
                    done.append(AttackResult(
                        attack=spec.title, config=attack.config(), eps=e, attacked=len(idx), fooled=int(fooled.sum()),
                        robust_accuracy_after=float(robust.float().mean()),
                        success_rate=float(fooled.float().mean()) if len(idx) else 0.0,
                        mean_norm=float(f_norms.mean()) if len(f_norms) else float("nan"),
                        max_norm=float(f_norms.max()) if len(f_norms) else float("nan"),
                        seconds=round(dt, 3), kind=attack.kind, threat=row.name,
                    ))  # fmt: skip
            row_robust[row.name] = robust
        accs = {name: float(r.float().mean()) if n else float("nan") for name, r in row_robust.items()}
        every = torch.stack(list(row_robust.values())).all(0)  # robust only if no attack of any row fooled it
        results.append(EpsResult(
            eps=e, clean_accuracy=clean_acc, robust_accuracy=float(every.float().mean()) if n else float("nan"),
            attacks=done, robust_examples=every.nonzero().squeeze(1).tolist(),
            seconds=round(time.perf_counter() - t_eps, 3), rows=accs,
            worst_row=min(accs, key=lambda k: accs[k]),  # the first row on ties (gray-box before white-box)
        ))  # fmt: skip
    bar.close()

    report = RobustnessReport(
        model=dict(model_meta or {}),
        norm=norm,
        eps=eps_list,
        n=n,
        suite=suite,
        attacks=[s.to_dict() for s in specs],
        clean_accuracy=clean_acc,
        results=results,
        threat_rows=[{"name": r.name, "description": r.description} for r in threat],
    )
    report.warnings += flags
    if dd.world > 1 and getattr(getattr(model, "denoiser", None), "randomized", False):
        report.warnings.append(
            f"the model is randomized (its predictions draw fresh randomness on every call): this run split over "
            f"{dd.world} ranks is another draw than a single process's, not the same numbers"
        )
    strongest = max(a.cost for _, a in built)
    is_suite = any(a.kind == "suite" for _, a in built)
    worst = results[-1]
    report.headline = {
        "eps": worst.eps,
        "robust_accuracy": worst.robust_accuracy,
        "rows": [r.name for r in threat],
        "attacks": [s.title for s in specs],
        "upper_bound_only": not (is_suite or strongest >= STRONG_COST),
    }
    if report.headline["upper_bound_only"] and worst.eps > 0:
        report.warnings.append(
            f"robust accuracy {100 * worst.robust_accuracy:.2f}% comes from weak attacks only "
            f"({', '.join(s.title for s in specs)}): it is an upper bound; run the standard or autoattack suite"
        )
    if checks and nonzero:
        report.checks = run_checks(model, x[clean_ok], y[clean_ok], report, norm=norm, probe_n=probe_n,
                                   batch_size=batch_size, progress=progress, precision=precision, ranks=dd)  # fmt: skip
        for c in report.failed_checks:
            report.warnings.append(f"gradient-masking check failed: {c.name}: {c.detail}")
        for c in report.unrun_checks:
            report.warnings.append(f"gradient-masking check not run (no pass): {c.name}: {c.detail}")
    report.seconds = round(time.perf_counter() - t_all, 3)
    report.meta = {
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "device": str(x.device),
        "torch": torch.__version__,
        "batch_size": batch_size,
        "precision": effective_precision(precision or "auto"),
        "verify_atol": VERIFY_ATOL,
        "ranks": dd.world,
    }
    return report
