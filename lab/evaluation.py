"""The robustness evaluator: ``evaluate(model, x, y, attacks, eps) -> RobustnessReport``.

Per epsilon it runs the attacks from cheapest to most expensive on an **active set**: an
example leaves the set as soon as one attack fools it, so expensive attacks only run on
what survived the cheap ones (the AutoAttack pattern), and each gradient attack also
drops an example from its own batch the moment it is fooled. An example counts as robust
only if every attack failed on it; that per-example worst case is the robust accuracy.

Then it runs the automatic gradient-masking checks (:mod:`lab.masking`) and picks the
headline: the worst-case robust accuracy at the largest epsilon, flagged as an upper
bound when only weak attacks produced it.
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
from tqdm.auto import tqdm

from attacks import ATTACKS, Attack
from defenses.denoisers.wrapper import ThreatRow, threat_rows
from lab.errors import LabError
from lab.report import AttackResult, EpsResult, RobustnessReport

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AttackSpec:
    """An attack by registered name plus settings; built per epsilon by :meth:`build`."""

    name: str
    settings: dict[str, Any] = field(default_factory=dict)
    label: str = ""

    def build(self, eps: float, norm: str) -> Attack:
        return ATTACKS.get(self.name)(eps=eps, norm=norm, **self.settings)

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


SUITES: dict[str, list[AttackSpec]] = {
    "quick": [AttackSpec("fgsm"), AttackSpec("pgd", {"steps": 20})],
    "standard": [
        AttackSpec("fgsm"),
        AttackSpec("pgd", {"steps": 20}),
        AttackSpec("pgd", {"steps": 100, "restarts": 10, "loss": "ce"}),
        AttackSpec("pgd", {"steps": 100, "restarts": 10, "loss": "margin"}),
    ],
    # One PGD per loss, no restarts: the defended models' table (every threat row runs it).
    "extended": [
        AttackSpec("fgsm"),
        AttackSpec("pgd", {"steps": 20}),
        AttackSpec("pgd", {"steps": 100, "loss": "margin"}),
    ],
    "autoattack": [AttackSpec("autoattack", {"version": "standard"}, label="autoattack (standard)")],
}

#: an evaluation whose strongest attack costs less than this many passes is "weak"
STRONG_COST = 100


def suite_specs(name: str) -> list[AttackSpec]:
    if name not in SUITES:
        raise LabError(f"unknown suite {name!r}; choose one of: {', '.join(SUITES)}")
    return list(SUITES[name])


def as_spec(a: AttackSpec | str) -> AttackSpec:
    if isinstance(a, AttackSpec):
        return a
    ATTACKS.get(a)  # a clear error for an unknown name
    return AttackSpec(a)


def check_eps(eps: Sequence[float], norm: str, input_shape: Sequence[int] | None = None) -> list[float]:
    """Sorted, de-duplicated epsilons; LabError for a negative or out-of-range one.

    With ``input_shape`` (C, H, W) the L2 bound (the image diameter) is checked too.
    """
    if not eps:
        raise LabError("at least one epsilon is needed")
    from attacks import make_threat

    for e in eps:
        threat = make_threat(norm, e)  # raises a LabError sentence for negative / too large values
        if input_shape is not None:
            threat.check_range(torch.zeros(1, *input_shape))
    return sorted(set(float(e) for e in eps))


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    was = model.training
    model.eval()
    try:
        return torch.cat([model(x[i : i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)])
    finally:
        model.train(was)


def run_attack_on(model: nn.Module, attack: Attack, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor,
                  batch_size: int, bar: Any = None, judge: nn.Module | None = None,
                  ) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """Attack ``x[idx]`` in batches: ``(fooled mask over idx, perturbation norms over idx)``.

    The attack runs on ``model``; ``judge`` (default: ``model``) decides whether the
    result fools: for a defended model the attacks may see a view of it (the bare
    classifier, a BPDA or EOT version) while the defended model itself is judged.
    """
    judge = model if judge is None else judge
    fooled = torch.zeros(len(idx), dtype=torch.bool, device=x.device)
    norms = torch.zeros(len(idx), device=x.device)
    for start in range(0, len(idx), batch_size):
        b = idx[start : start + batch_size]
        xb, yb = x[b], y[b]
        x_adv = attack(model, xb, yb)
        with torch.no_grad():
            fooled[start : start + len(b)] = predict(judge, x_adv, batch_size) != yb
            norms[start : start + len(b)] = attack.threat.norm(x_adv - xb)
        if bar is not None:
            bar.update(len(b))
    return fooled, norms


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
) -> RobustnessReport:
    """Evaluate ``model`` on images ``x`` [N,C,H,W] in [0,1] with labels ``y`` [N].

    ``attacks``: registered names or :class:`AttackSpec`; run cheapest first on the set of
    examples no attack has fooled yet. ``eps``: the radii (in pixel units, 0 allowed).
    ``checks``: run the gradient-masking checks on up to ``probe_n`` correctly classified
    examples. ``rows``: who the attacks see (default :func:`threat_rows`: the model itself;
    for a denoised model gray-box, white-box, and BPDA / EOT where the defense needs them);
    every row runs every attack, the model itself judges, and each epsilon's robust
    accuracy is the worst row's. Returns a :class:`RobustnessReport`.
    """
    from attacks.base import check_inputs

    if batch_size < 1:
        raise LabError(f"batch size must be >= 1, got {batch_size}")
    check_inputs(model, x, y, None)
    specs = [as_spec(a) for a in attacks]
    if not specs:
        raise LabError("no attack to run: give --attack NAME or --suite")
    eps_list = check_eps(eps, norm, tuple(x.shape[1:]))
    y = y.to(x.device, torch.int64)
    t_all = time.perf_counter()

    # Build once at the largest epsilon to validate settings and order by cost.
    probe_eps = max(eps_list)
    built = [(s, s.build(probe_eps, norm)) for s in specs]
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
    nonzero = [e for e in eps_list if e > 0]
    total = sum(int(clean_ok.sum()) for _ in nonzero) * len(specs) * len(threat)
    bar = tqdm(total=total, desc="attacking", unit="img", disable=not progress, leave=False)
    for e in eps_list:
        t_eps = time.perf_counter()
        done: list[AttackResult] = []
        row_robust: dict[str, torch.Tensor] = {}
        for row in threat:
            robust = clean_ok.clone()
            if e > 0:
                for spec in specs:
                    attack = spec.build(e, norm)
                    idx = robust.nonzero().squeeze(1)
                    where = f" [{row.name}]" if len(threat) > 1 else ""
                    bar.set_description(f"eps {e:g} {spec.title}{where}")
                    t0 = time.perf_counter()
                    fooled, norms = run_attack_on(row.attacked, attack, x, y, idx, batch_size, bar, judge=model)
                    dt = time.perf_counter() - t0
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
        worst_row = min(accs, key=lambda k: accs[k])  # the first row on ties (gray-box before white-box)
        every = torch.stack(list(row_robust.values())).all(0)
        results.append(EpsResult(
            eps=e, clean_accuracy=clean_acc, robust_accuracy=accs[worst_row],
            attacks=done, robust_examples=row_robust[worst_row].nonzero().squeeze(1).tolist(),
            seconds=round(time.perf_counter() - t_eps, 3), rows=accs, headline_row=worst_row,
            robust_accuracy_all_rows=float(every.float().mean()) if n else float("nan"),
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
    strongest = max(a.cost for _, a in built)
    is_suite = any(a.kind == "suite" for _, a in built)
    worst = results[-1]
    report.headline = {
        "eps": worst.eps,
        "robust_accuracy": worst.robust_accuracy,
        "row": worst.headline_row,
        "attacks": [s.title for s in specs],
        "upper_bound_only": not (is_suite or strongest >= STRONG_COST),
    }
    if report.headline["upper_bound_only"] and worst.eps > 0:
        report.warnings.append(
            f"robust accuracy {100 * worst.robust_accuracy:.2f}% comes from weak attacks only "
            f"({', '.join(s.title for s in specs)}): it is an upper bound; run --suite standard or autoattack"
        )
    if checks and nonzero:
        from lab.masking import run_checks

        report.checks = run_checks(model, x[clean_ok], y[clean_ok], report, norm=norm, probe_n=probe_n,
                                   batch_size=batch_size, progress=progress)  # fmt: skip
        for c in report.failed_checks:
            report.warnings.append(f"gradient-masking check failed: {c.name}: {c.detail}")
    report.seconds = round(time.perf_counter() - t_all, 3)
    report.meta = {
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "device": str(x.device),
        "torch": torch.__version__,
        "batch_size": batch_size,
    }
    return report
