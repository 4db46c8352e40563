"""What makes the evaluator's numbers trustworthy: the per-image worst case over every threat
row, transfer rows at full strength, every counted success re-verified, the library's own
flags in the report, and the ``--fail-under`` gate that refuses unverified numbers."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import torch
from torch import nn

from attacks import ATTACKS, Attack
from attacks.autoattack_common import AA_LOGGER, collect_flags
from defenses.denoisers.wrapper import ThreatRow
from lab.core.errors import LabError
from lab.evaluation.engine import AttackSpec, evaluate
from lab.evaluation.gate import gate
from lab.evaluation.report import MaskingCheck, RobustnessReport


class MeanThreshold(nn.Module):
    """Judge: class 1 when the image's mean pixel is above 0.5, else class 0."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = x.flatten(1).mean(1)
        return torch.stack([torch.zeros_like(m), 100 * (m - 0.5)], 1)


class BandSurrogate(nn.Module):
    """A surrogate whose class-1 logit rises with the mean pixel inside [lo, hi) and falls
    outside it: FGSM on it pushes exactly the images whose mean lies in the band upward."""

    def __init__(self, lo: float, hi: float) -> None:
        super().__init__()
        self.lo, self.hi = lo, hi

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = x.flatten(1).mean(1)
        inside = ((m >= self.lo) & (m < self.hi)).float() * 2 - 1  # no gradient through the band test
        return torch.stack([torch.zeros_like(m), 100 * inside * m], 1)


def _band_images() -> tuple[torch.Tensor, torch.Tensor]:
    means = torch.tensor([0.42, 0.43, 0.46, 0.47, 0.20, 0.25, 0.80, 0.90])
    x = means.view(-1, 1, 1, 1).expand(-1, 1, 4, 4).contiguous()
    y = (means > 0.5).long()
    return x, y


def test_robust_accuracy_is_the_per_image_worst_case_over_every_row() -> None:
    """Row a fools images 0-1, row b images 2-3: each row alone leaves 75%, but only 50% of the
    images survive both, and that 50% is the robust accuracy everywhere (headline, gate)."""
    x, y = _band_images()
    judge = MeanThreshold()
    rows = [ThreatRow("a", BandSurrogate(0.41, 0.445), "band a"), ThreatRow("b", BandSurrogate(0.445, 0.49), "band b")]
    report = evaluate(judge, x, y, ["fgsm"], [0.1], rows=rows, checks=False, progress=False)
    r = report.results[0]
    assert r.rows == {"a": 0.75, "b": 0.75}
    assert r.robust_accuracy == 0.5
    assert r.robust_examples == [4, 5, 6, 7]
    assert report.headline["robust_accuracy"] == 0.5
    restored = RobustnessReport.from_dict(report.to_dict())
    assert restored.results[0].robust_accuracy == 0.5 and restored.results[0].rows == r.rows
    verdict = gate(report, 0.6, accept_unverified=True)
    assert verdict is not None and not verdict.passed and "50.00%" in verdict.reason


def test_a_version_1_report_is_read_with_its_per_image_number() -> None:
    x, y = _band_images()
    rows = [ThreatRow("a", BandSurrogate(0.41, 0.445), "band a"), ThreatRow("b", BandSurrogate(0.445, 0.49), "band b")]
    d = evaluate(MeanThreshold(), x, y, ["fgsm"], [0.1], rows=rows, checks=False, progress=False).to_dict()
    d["format_version"] = 1
    for r in d["results"]:  # what version 1 wrote: the worst row's number, the per-image one beside it
        r["robust_accuracy_all_rows"] = r["robust_accuracy"]
        r["robust_accuracy"] = min(r["rows"].values())
        r["headline_row"] = r.pop("worst_row")
    old = RobustnessReport.from_dict(d)
    assert old.results[0].robust_accuracy == 0.5 and old.results[0].worst_row == "a"


def test_transfer_rows_run_full_strength_settings() -> None:
    margin = AttackSpec("pgd", {"steps": 10, "loss": "margin"})
    plain = margin.build(0.1, "linf").config()
    full = margin.build(0.1, "linf", transfer=True).config()
    assert plain["early_stop"] is True and plain["kappa"] is None
    assert full["early_stop"] is False and full["kappa"] == 20.0
    ce = AttackSpec("pgd", {"steps": 10}).build(0.1, "linf", transfer=True).config()
    assert ce["early_stop"] is False and ce["kappa"] is None  # cross-entropy has no cap: it keeps climbing
    assert AttackSpec("fgsm").build(0.1, "linf", transfer=True).config()["early_stop"] is False
    # a setting the user gave explicitly is kept
    assert AttackSpec("pgd", {"early_stop": True}).build(0.1, "linf", transfer=True).config()["early_stop"] is True
    with pytest.raises(LabError, match="margin loss only"):
        ATTACKS.get("pgd")(eps=0.1, kappa=5.0)


def test_full_strength_examples_go_past_the_boundary(trained_fastnet) -> None:
    """Early stop keeps the first iterate that barely fools; the transfer settings keep pushing
    until the wrong class leads by kappa (or the budget ends): much larger margins."""
    m, x, y = trained_fastnet.model, trained_fastnet.x, trained_fastnet.y
    spec = AttackSpec("pgd", {"steps": 20, "loss": "margin"})

    def margins(attack: Attack) -> torch.Tensor:
        with torch.no_grad():
            z = m(attack(m, x, y))
        other = z.scatter(1, y.view(-1, 1), float("-inf")).amax(1)
        d = other - z.gather(1, y.view(-1, 1)).squeeze(1)
        return d[d > 0]

    barely = margins(spec.build(0.2, "linf"))
    full = margins(spec.build(0.2, "linf", transfer=True))
    # measured over fixture seeds 0-2, with bf16 steering and with LAB_PRECISION=fp32: median
    # margin 0.54-0.93 logits with early stop, 7.2-9.9 with the transfer settings (10.5x-13.7x);
    # the test asks for 3x
    assert len(full) >= len(barely) > 10
    assert float(full.median()) > 3 * float(barely.median())


class _Broken(Attack):
    """A plug-in attack that breaks the contract in the way ``mode`` says (it bypasses the base
    class's projection by overriding ``__call__``, as a careless plug-in could)."""

    name = "broken"
    mode = "ball"

    def __init__(self, *, eps: float, norm: str = "linf", seed: int = 0) -> None:
        super().__init__(eps=eps, norm=norm, seed=seed)

    def perturb(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, target: Any) -> torch.Tensor:
        raise AssertionError("not used")

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, target: Any = None) -> torch.Tensor:
        if self.mode == "ball":
            return (x + 2 * self.eps).clamp(0, 1)  # fools by leaving the ball
        if self.mode == "range":
            return x + 0.5  # out of [0, 1]
        if self.mode == "nan":
            return torch.full_like(x, float("nan"))
        return x[:, :, :2]  # wrong shape


@pytest.mark.parametrize(("mode", "message"), [("ball", "outside the threat set"), ("range", r"outside \[0, 1\]"),
                                               ("nan", "non-finite"), ("shape", "shape")])  # fmt: skip
def test_an_attack_that_breaks_its_contract_is_an_error_never_a_success(
    monkeypatch: pytest.MonkeyPatch, mode: str, message: str
) -> None:
    monkeypatch.setattr(_Broken, "mode", mode)
    monkeypatch.setitem(ATTACKS._items, "broken", _Broken)
    x, y = _band_images()
    with pytest.raises(LabError, match=f"attack 'broken' .*{message}"):
        evaluate(MeanThreshold(), x, y, ["broken"], [0.1], checks=False, progress=False)


def test_autoattack_flags_reach_the_report(monkeypatch: pytest.MonkeyPatch) -> None:
    notes: list[str] = []
    with collect_flags(notes):
        AA_LOGGER.warning("Square Attack has decreased the robust accuracy of 0.49%.")
        AA_LOGGER.info("not a flag")
    assert notes == ["Square Attack has decreased the robust accuracy of 0.49%."]
    assert not any(isinstance(h, logging.Handler) and h.__class__.__name__ == "_Collect" for h in AA_LOGGER.handlers)

    class Flagging(_Broken):
        def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, target: Any = None) -> torch.Tensor:
            self.notes = ["the library flagged this model"]
            return x.clone()

    monkeypatch.setitem(ATTACKS._items, "flagging", Flagging)
    x, y = _band_images()
    report = evaluate(MeanThreshold(), x, y, ["flagging"], [0.1], checks=False, progress=False)
    assert "flagging at eps 0.1: the library flagged this model" in report.warnings


def _report(failed: bool = False, checks: bool = True, weak: bool = False, acc: float = 0.9) -> RobustnessReport:
    x, y = _band_images()
    rep = evaluate(MeanThreshold(), x, y, ["fgsm"], [0.1], checks=False, progress=False)
    rep.headline.update(robust_accuracy=acc, upper_bound_only=weak)
    if checks:
        rep.checks = [MaskingCheck("large-eps", not failed, "PGD-20 at eps 1 leaves 40% accuracy", {})]
    return rep


@pytest.mark.parametrize(("kw", "why"), [({"failed": True}, "check failed"), ({"checks": False}, "no gradient-masking"),
                                         ({"weak": True}, "only weak attacks")])  # fmt: skip
def test_the_gate_refuses_unverified_numbers_unless_told(kw: dict[str, bool], why: str) -> None:
    refused = gate(_report(**kw), 0.5)
    assert refused is not None and not refused.passed and why in refused.reason
    assert "--accept-unverified" in refused.reason
    accepted = gate(_report(**kw), 0.5, accept_unverified=True)
    assert accepted is not None and accepted.passed


def test_the_gate_compares_a_verified_number() -> None:
    assert gate(_report(), None) is None
    ok = gate(_report(acc=0.9), 0.9)
    low = gate(_report(acc=0.89), 0.9)
    assert ok is not None and ok.passed
    assert low is not None and not low.passed and "below --fail-under 90.00%" in low.reason
