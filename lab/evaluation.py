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
then decided by the judged model itself in fp32.

Then it runs the automatic gradient-masking checks (:mod:`lab.masking`) and picks the
headline: the robust accuracy at the largest epsilon, flagged as an upper bound when only
weak attacks produced it.
"""

from __future__ import annotations

import datetime as _dt
import inspect
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
from lab.runtime import effective_precision

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
#: slack allowed when the evaluator re-checks that an adversarial example lies in the threat
#: set: float32 rounding of ``x + delta`` (absolute, in pixel units, plus the same relative to eps)
VERIFY_ATOL = 1e-5


def suite_specs(name: str) -> list[AttackSpec]:
    if name not in SUITES:
        raise LabError(f"unknown suite {name!r}; choose one of: {', '.join(SUITES)}")
    return list(SUITES[name])


def setting_names(cls: type[Attack]) -> set[str]:
    """The keyword settings an attack class's ``__init__`` takes."""
    params = inspect.signature(cls.__init__).parameters
    return {p for p, v in params.items() if p != "self" and v.kind in (v.KEYWORD_ONLY, v.POSITIONAL_OR_KEYWORD)}


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
    """Predicted classes [N] of ``model`` in eval mode and in fp32 (no autocast), in batches."""
    was = model.training
    model.eval()
    try:
        with torch.autocast(device_type=x.device.type, enabled=False):
            return torch.cat([model(x[i : i + batch_size].float()).argmax(1) for i in range(0, len(x), batch_size)])
    finally:
        model.train(was)


def verify_adversarial(attack: Attack, title: str, x: torch.Tensor, x_adv: torch.Tensor) -> torch.Tensor:
    """The perturbation norms [B] of ``x_adv`` around ``x``, after checking that every example
    is a valid answer of ``attack``: a tensor of ``x``'s shape on its device, finite, in [0, 1],
    inside the threat set up to :data:`VERIFY_ATOL`. Anything else is a LabError naming the
    attack: an attack that breaks its contract never scores a success."""
    who = f"attack {title!r}"
    if not torch.is_tensor(x_adv) or x_adv.shape != x.shape or x_adv.device != x.device:
        got = tuple(x_adv.shape) if torch.is_tensor(x_adv) else type(x_adv).__name__
        raise LabError(f"{who} returned {got} for input {tuple(x.shape)} on {x.device}; it must return images "
                       "of the input's shape and device")  # fmt: skip
    if not x_adv.is_floating_point() or not bool(torch.isfinite(x_adv).all()):
        raise LabError(f"{who} returned non-finite or non-float images ({x_adv.dtype})")
    lo, hi = float(x_adv.min()), float(x_adv.max())
    if lo < -VERIFY_ATOL or hi > 1 + VERIFY_ATOL:
        raise LabError(f"{who} returned pixels outside [0, 1] (range {lo:.6g}..{hi:.6g})")
    norms = attack.threat.norm((x_adv - x).float())
    limit = attack.eps * (1 + VERIFY_ATOL) + VERIFY_ATOL
    if len(norms) and float(norms.max()) > limit:
        i = int(norms.argmax())
        raise LabError(f"{who} returned example {i} at {attack.norm} distance {float(norms[i]):.6g} from its input, "
                       f"outside the threat set of radius {attack.eps:g}")  # fmt: skip
    return norms


def run_attack_on(model: nn.Module, attack: Attack, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor,
                  batch_size: int, bar: Any = None, judge: nn.Module | None = None, title: str | None = None,
                  ) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """Attack ``x[idx]`` in batches: ``(fooled mask over idx, perturbation norms over idx)``.

    The attack runs on ``model``; ``judge`` (default: ``model``) decides whether the
    result fools: for a defended model the attacks may see a view of it (the bare
    classifier, a BPDA or EOT version) while the defended model itself is judged, in fp32.
    Every result is verified first (:func:`verify_adversarial`).
    """
    judge = model if judge is None else judge
    title = title or attack.name
    fooled = torch.zeros(len(idx), dtype=torch.bool, device=x.device)
    norms = torch.zeros(len(idx), device=x.device)
    for start in range(0, len(idx), batch_size):
        b = idx[start : start + batch_size]
        xb, yb = x[b], y[b]
        x_adv = attack(model, xb, yb)
        with torch.no_grad():
            norms[start : start + len(b)] = verify_adversarial(attack, title, xb, x_adv)
            fooled[start : start + len(b)] = predict(judge, x_adv, batch_size) != yb
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
    precision: str | None = None,
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
    each attack's own, ``auto``). Returns a :class:`RobustnessReport`.
    """
    from attacks.base import check_inputs

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
    bar = tqdm(total=total, desc="attacking", unit="img", disable=not progress, leave=False)
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
                                                  title=spec.title)  # fmt: skip
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
            f"({', '.join(s.title for s in specs)}): it is an upper bound; run --suite standard or autoattack"
        )
    if checks and nonzero:
        from lab.masking import run_checks

        report.checks = run_checks(model, x[clean_ok], y[clean_ok], report, norm=norm, probe_n=probe_n,
                                   batch_size=batch_size, progress=progress, precision=precision)  # fmt: skip
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
    }
    return report
