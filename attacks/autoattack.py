"""AutoAttack (Croce & Hein, 2020, "Reliable evaluation of adversarial robustness with an
ensemble of diverse parameter-free attacks"), the official implementation (PyPI
``pyautoattack``, a packaging of fra31/auto-attack), not a re-implementation.

``version="standard"`` runs APGD-CE, APGD-T (9 targets), FAB-T (9 targets) and Square
(5,000 queries) one after the other, each on the examples the previous ones did not fool;
``"plus"`` adds APGD-DLR and FAB with 5 restarts; ``"rand"`` (for randomized defenses) runs
APGD-CE and APGD-DLR with 20-sample EOT; ``"custom"`` runs the sub-attacks named in
``attacks``. ``steps`` and ``n_queries`` override the iterations of APGD/FAB and the
queries of Square (None keeps AutoAttack's 100 and 5,000): a run with them set is *not*
the standard evaluation, and :meth:`config` says so. L-inf or L2; untargeted in the lab's
sense (APGD-T and FAB-T pick their own targets).

Around the package: its sanity checks trace a forward pass with ``sys.settrace`` and then
call ``sys.settrace(None)``, which would switch off a debugger or coverage for the rest of
the run, so the previous tracer is restored; the counters of that check are module-global
and never reset (one flagged model would flag every later one), so they are reset first.
Target counts are capped at ``classes - 1``.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Sequence
from types import ModuleType
from typing import Any, ClassVar

import torch
from torch import nn

from attacks.autoattack_common import (
    AA_NORMS,
    class_count,
    collect_flags,
    import_autoattack,
    need_classes,
    set_apgd_iters,
)
from attacks.base import ATTACKS, Attack
from lab.core.errors import LabError
from lab.core.rng import seeded
from lab.core.settings import choice, whole

VERSIONS = ("standard", "plus", "rand", "custom")
SUB_ATTACKS = ("apgd-ce", "apgd-dlr", "fab", "square", "apgd-t", "fab-t")
_RUNS = {
    "standard": ("apgd-ce", "apgd-t", "fab-t", "square"),
    "plus": ("apgd-ce", "apgd-dlr", "fab", "square", "apgd-t", "fab-t"),
    "rand": ("apgd-ce", "apgd-dlr"),
}


@contextlib.contextmanager
def _guarded_checks(aa: ModuleType) -> Iterator[None]:
    """Reset the dynamic-defense check's counters; restore the caller's ``sys.settrace``."""
    for k in aa.checks.funcs:
        aa.checks.funcs[k] = 0
    tracer = sys.gettrace()
    try:
        yield
    finally:
        sys.settrace(tracer)


@ATTACKS.register("autoattack")
class AutoAttack(Attack):
    kind = "suite"
    targeted_ok = False
    quick_settings: ClassVar[dict[str, Any]] = {"version": "custom", "attacks": ("apgd-ce",), "steps": 10}

    def __init__(self, *, eps: float, norm: str = "linf", version: str = "standard",
                 attacks: Sequence[str] | None = None, batch_size: int = 250, steps: int | None = None,
                 n_queries: int | None = None, seed: int = 0) -> None:  # fmt: skip
        super().__init__(eps=eps, norm=norm, seed=seed)
        self.version = choice("AutoAttack version", version, VERSIONS)
        if version == "custom":
            if not attacks or isinstance(attacks, str):
                raise LabError(f"AutoAttack version 'custom' needs attacks=[...] from: {', '.join(SUB_ATTACKS)}")
            for a in attacks:
                choice("AutoAttack sub-attack", a, SUB_ATTACKS)
            if len(set(attacks)) != len(attacks):
                raise LabError(f"AutoAttack attacks must not repeat a sub-attack, got {list(attacks)}")
            self.attacks: tuple[str, ...] | None = tuple(attacks)
        elif attacks is not None:
            raise LabError(f"AutoAttack version {version!r} fixes its attacks; use version='custom' to choose them")
        else:
            self.attacks = None
        self.batch_size = whole("batch_size", batch_size)
        self.steps = whole("steps", steps) if steps is not None else None
        self.n_queries = whole("n_queries", n_queries) if n_queries is not None else None

    @property
    def runs(self) -> tuple[str, ...]:
        """The sub-attacks this configuration runs, in order."""
        return self.attacks if self.attacks is not None else _RUNS[self.version]

    @property
    def cost(self) -> float:  # type: ignore[override]
        """Rough forward+backward passes per example if nothing is fooled early (as built by AutoAttack)."""
        n, q = self.steps or 100, self.n_queries or 5000
        restarts = {"standard": 1, "plus": 5, "rand": 1, "custom": 5}[self.version]
        eot = 20 if self.version == "rand" else 1
        fab_restarts = 1 if self.version == "standard" else 5
        per = {
            "apgd-ce": n * restarts * eot, "apgd-dlr": n * restarts * eot, "apgd-t": n * 9,
            "fab": n * fab_restarts * 10, "fab-t": n * 9 * 2, "square": q / 3,
        }  # fmt: skip
        return float(sum(per[a] for a in self.runs))

    def config(self) -> dict[str, Any]:
        return {**super().config(), "version": self.version, "attacks": list(self.runs),
                "batch_size": self.batch_size, "steps": self.steps, "n_queries": self.n_queries,
                "standard_budget": self.steps is None and self.n_queries is None}  # fmt: skip

    def perturb(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                target: torch.Tensor | None) -> torch.Tensor:  # fmt: skip
        aa = import_autoattack()
        n = class_count(model, x)
        if "apgd-t" in self.runs or "fab-t" in self.runs:
            need_classes("AutoAttack's targeted attacks (APGD-T, FAB-T)", n, 4)
        elif "apgd-dlr" in self.runs:
            need_classes("APGD-DLR", n, 3)
        suite = aa.AutoAttack(
            model, norm=AA_NORMS[self.norm], eps=self.eps, version=self.version,
            attacks=list(self.attacks) if self.attacks is not None else None, seed=self.seed, device=x.device,
        )  # fmt: skip
        suite.apgd_targeted.n_target_classes = min(suite.apgd_targeted.n_target_classes, n - 1)
        suite.fab.n_target_classes = min(suite.fab.n_target_classes, n - 1)
        if self.steps is not None:
            set_apgd_iters(suite.apgd, self.steps)
            set_apgd_iters(suite.apgd_targeted, self.steps)
            suite.fab.n_iter = self.steps
        if self.n_queries is not None:
            suite.square.n_queries = self.n_queries
        with seeded(self.seed, x.device), _guarded_checks(aa), collect_flags(self.notes):
            out = suite.run_standard_evaluation(x, y, batch_size=self.batch_size)
        return out[0] if isinstance(out, tuple) else out
