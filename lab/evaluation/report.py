"""Robustness reports are data: dataclasses written as JSON, read back by the CLI and app.

A :class:`RobustnessReport` holds, per epsilon, the clean accuracy, the robust accuracy
and one :class:`AttackResult` per attack; plus the gradient-masking checks and the headline.
The robust accuracy is always the per-image worst case: an image counts as robust only
if every attack failed on it. A defended model (a denoiser in front of a classifier) is
evaluated in several threat *rows* (gray-box, white-box, BPDA, EOT): every row runs
every attack, an image counts as robust only if every attack of every row failed on it
(``robust_accuracy``), and each row's own accuracy is kept beside it (``rows``).
Rendering (Markdown, plots, the CLI table) lives in :mod:`lab.present`; nothing there
recomputes a number.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.core.errors import LabError
from lab.core.io import atomic_write_json

REPORT_FORMAT = "lab-robustness-report"
#: the check ``lab eval --certify`` adds (lab.evaluation.certify.sandwich_check)
SANDWICH_CHECK = "certified <= attacked"
REPORT_VERSION = 2  # 2: robust_accuracy is the per-image worst case over every threat row


@dataclass
class AttackResult:
    """One attack at one epsilon, run on the examples still standing when its turn came.

    ``robust_accuracy_after`` is the worst-case accuracy over this attack and every attack
    before it (cumulative, like AutoAttack's printout); ``success_rate`` is the fraction of
    the examples it attacked that it fooled.
    """

    attack: str
    config: dict[str, Any]
    eps: float
    attacked: int
    fooled: int
    robust_accuracy_after: float
    success_rate: float
    mean_norm: float  # over the perturbations that fooled the model (nan when none did)
    max_norm: float
    seconds: float
    kind: str = "white-box"  # white-box | black-box | suite (what the attack needs)
    threat: str = "white-box"  # the report row it ran in: gray-box | white-box | bpda | eot


@dataclass
class EpsResult:
    eps: float
    clean_accuracy: float
    #: the per-image worst case: robust only if every attack of every threat row failed on it
    robust_accuracy: float
    attacks: list[AttackResult] = field(default_factory=list)
    robust_examples: list[int] = field(default_factory=list)  # indices (into the evaluated set) robust in every row
    seconds: float = 0.0
    #: per threat row (gray-box, white-box, bpda, eot): that row's own per-image worst case
    rows: dict[str, float] = field(default_factory=dict)
    #: the row with the lowest accuracy on its own (information; robust_accuracy is over all rows)
    worst_row: str = "white-box"


@dataclass
class MaskingCheck:
    """An automatic gradient-masking check (:mod:`lab.evaluation.masking`) and the numbers behind it.

    ``passed``: True (pass), False (FAIL) or None (not run: the check could not run, so it
    guards nothing and never counts as a pass). :attr:`status` says which, in words.
    """

    name: str
    passed: bool | None
    detail: str
    numbers: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.passed is not None:
            self.passed = bool(self.passed)
        # Reports written before "not run" existed recorded a skipped check as passed.
        if self.passed is True and self.detail.startswith("skipped"):
            self.passed = None

    @property
    def status(self) -> str:
        """``"pass"``, ``"FAIL"`` or ``"not run"``."""
        if self.passed is None:
            return "not run"
        return "pass" if self.passed else "FAIL"


@dataclass
class RobustnessReport:
    model: dict[str, Any]  # arch, dataset, run path, clean test accuracy from training
    norm: str
    eps: list[float]
    n: int
    suite: str | None
    attacks: list[dict[str, Any]]  # the attack specs as run
    clean_accuracy: float
    results: list[EpsResult]
    checks: list[MaskingCheck] = field(default_factory=list)
    headline: dict[str, Any] = field(default_factory=dict)
    threat_rows: list[dict[str, str]] = field(default_factory=list)  # name + what the attacks saw
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)  # versions, device, seed, created, data indices
    #: a certification of the same images (lab.evaluation.certify.CertificationReport as a dict), or empty
    certification: dict[str, Any] = field(default_factory=dict)

    @property
    def failed_checks(self) -> list[MaskingCheck]:
        """The checks that ran and failed (not those that could not run: see :attr:`unrun_checks`)."""
        return [c for c in self.checks if c.passed is False]

    @property
    def unrun_checks(self) -> list[MaskingCheck]:
        """The checks that could not run: they guard nothing, and are no pass."""
        return [c for c in self.checks if c.passed is None]

    def result_at(self, eps: float) -> EpsResult:
        for r in self.results:
            if abs(r.eps - eps) < 1e-12:
                return r
        raise KeyError(eps)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d = {"format": REPORT_FORMAT, "format_version": REPORT_VERSION, **d}
        return jsonable(d)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the report as JSON atomically."""
        p = Path(path)
        atomic_write_json(p, self.to_dict())
        return p

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RobustnessReport:
        if d.get("format") != REPORT_FORMAT:
            raise LabError(f"not a lab robustness report (format {d.get('format')!r})")
        results = [_eps_result(r, d.get("format_version", 1)) for r in d["results"]]
        checks = [MaskingCheck(**c) for c in d.get("checks", [])]
        fields = {f.name for f in dataclasses.fields(cls)} - {"results", "checks"}
        return cls(results=results, checks=checks, **{k: d[k] for k in fields if k in d})

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> RobustnessReport:
        p = Path(path)
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise LabError(f"report {str(p)!r} does not exist") from None
        except (OSError, json.JSONDecodeError) as exc:
            raise LabError(f"report {str(p)!r} is unreadable ({exc})") from None
        try:
            return cls.from_dict(data)
        except (KeyError, TypeError) as exc:
            raise LabError(f"report {str(p)!r} is incomplete ({exc})") from None


def _eps_result(r: dict[str, Any], version: int) -> EpsResult:
    """An :class:`EpsResult` from JSON; a version-1 report (whose ``robust_accuracy`` was the
    worst *row*'s) is read with its per-image number over all rows as the robust accuracy."""
    r = dict(r)
    attacks = [AttackResult(**a) for a in r.pop("attacks", [])]
    all_rows = r.pop("robust_accuracy_all_rows", None)
    if "headline_row" in r:
        r["worst_row"] = r.pop("headline_row")
    if version < 2 and all_rows is not None:
        r["robust_accuracy"] = all_rows
    known = {f.name for f in dataclasses.fields(EpsResult)}
    return EpsResult(attacks=attacks, **{k: v for k, v in r.items() if k in known})


def jsonable(obj: Any) -> Any:
    """NaN/inf become None so the JSON is standard; tuples become lists."""
    if isinstance(obj, float):
        return obj if obj == obj and obj not in (float("inf"), float("-inf")) else None
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    return obj
