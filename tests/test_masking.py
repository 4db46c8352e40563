"""The gradient-masking checks (:mod:`lab.evaluation.masking`) shown to fail: for each of the five, a
tiny model that masks gradients the way that check looks for, run through the public
``evaluate(..., checks=True)``, and the check FAILs; on healthy models every check passes.
A check that cannot run says "not run", never "pass", in the data and in every renderer.

The models are hand-built on 1x16x16 synthetic images, two classes (dark / bright), so
each masking mechanism is exact and each run takes about a second. The numbers quoted in
comments were measured with data seeds and attack seeds 0..9 (``run_checks(seed=s)`` on
``data(s)``), in the default precision (bf16 autocast on this CPU) and with
``LAB_PRECISION=fp32``: the two agreed to the example in all but one run (noted below). "Margin" is how far a measured
number lies beyond the check's tolerance (the tolerances are those of a 64-example probe).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from attacks import ATTACKS
from attacks.base import Attack
from lab.core.errors import LabError
from lab.evaluation import masking
from lab.evaluation.engine import evaluate
from lab.evaluation.report import MaskingCheck, RobustnessReport
from lab.models import LabModel
from lab.models.base import ModelInfo
from lab.present import files, markdown, terminal, text

SHAPE = (1, 16, 16)
N = 64  # images per synthetic set; all are correctly classified, so the probe is all of them
INFO = ModelInfo(arch="tiny", dataset="synthetic", input_shape=SHAPE, class_names=("dark", "bright"),
                 mean=(0.0,), std=(1.0,))  # fmt: skip
ANSI = re.compile(r"\x1b\[[0-9;]*m")
HAS_SQUARE = "square" in ATTACKS


def _lab(net: nn.Module) -> LabModel:
    return LabModel(net, INFO).eval()


# ---------------------------------------------------------------- models


class Brightness(nn.Module):
    """Healthy linear classifier: logit gap ``2 * scale * (mean(x) - 0.5)`` (an nn.Linear, so
    bf16 autocast really changes its arithmetic). Robust at L-inf eps exactly when the image's
    brightness is more than eps from 0.5, and FGSM finds the optimum: every attack agrees.

    ``scale=1e4`` saturates the softmax: the smallest clean logit gap is 600, so in fp32
    softmax(z) is exactly one-hot and the cross-entropy gradient is exactly zero; the margin
    loss still has a gradient. ``bits``: the input is first quantized to ``2**bits - 1``
    levels with ``torch.round`` (zero gradient): 1 bit is binarization, 8 bits uint8 pixels.
    """

    def __init__(self, scale: float = 10.0, bits: int | None = None) -> None:
        super().__init__()
        self.lin = nn.Linear(SHAPE[0] * SHAPE[1] * SHAPE[2], 1)
        with torch.no_grad():
            self.lin.weight.fill_(1.0 / self.lin.in_features)
            self.lin.bias.fill_(-0.5)
        self.scale = scale
        self.levels = None if bits is None else 2**bits - 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.levels is not None:
            x = torch.round(x * self.levels) / self.levels
        m = self.scale * self.lin(x.flatten(1))
        return torch.cat([-m, m], 1)


class RoughnessBand(nn.Module):
    """Accuracy that RISES with epsilon. The class is the brightness of the binarized image
    (``torch.round``: zero gradient, so PGD never leaves its random start), but the decision
    flips when the image's roughness, the mean absolute horizontal neighbour difference (a
    comparison: no gradient either), lies in (LO, HI). Clean images are constant (roughness
    0); a uniform random start of radius e has roughness 2e/3 (std about 0.03e here), so the
    band catches random starts of radius 0.0375..0.0675 and nothing else: at eps 0.2 the
    ladder's eps/4 = 0.05 falls in it, eps/8 lands below and eps/2, eps above.
    """

    LO, HI = 0.025, 0.045

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = torch.round(x).flatten(1).mean(1) - 0.5
        r = (x[..., 1:] - x[..., :-1]).abs().flatten(1).mean(1)
        flip = 1.0 - 2.0 * ((r > self.LO) & (r < self.HI)).float()
        m = 10.0 * b * flip
        return torch.stack([-m, m], 1)


class Trap(nn.Module):
    """FGSM beats PGD: a loss surface with a local maximum that traps small steps.

    Images have brightness 0.5 +- 0.2. Along u = (0.2 - |mean(x) - 0.5|) / 0.1 (how far the
    brightness moved towards 0.5, in units of eps 0.1) the true class's margin is
    ``K * (C - f(u))`` with f(u) = u^3/3 - 0.45u^2 + 0.18u: the loss rises to a local
    maximum at u = 0.3 (margin 4.5), falls to u = 0.6, then rises and crosses the decision
    boundary at u = 0.92. FGSM's one full step lands at u = 1 (margin -3.7: fooled); PGD's
    steps of eps/8 climb to u = 0.3 and oscillate there, never past u = 0.45.
    """

    EPS, K, C = 0.1, 200.0, 0.045

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.flatten(1).mean(1) - 0.5
        u = (0.2 - t.abs()) / self.EPS
        f = u**3 / 3 - 0.45 * u**2 + 0.18 * u
        m = torch.sign(t) * self.K * (self.C - f)
        return torch.stack([-m / 2, m / 2], 1)


# ---------------------------------------------------------------- data


def _zero_mean_noise(n: int, amplitude: float, g: torch.Generator) -> torch.Tensor:
    z = amplitude * (2 * torch.rand(n, *SHAPE, generator=g) - 1)
    return z - z.mean(dim=(1, 2, 3), keepdim=True)


def graded(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Brightness 0.5 +- a, a uniform in [0.03, 0.3], plus zero-mean texture of +-0.05:
    about 70% of the images are robust at eps 0.1 (those with a > 0.1)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(N) % 2
    a = 0.03 + 0.27 * torch.rand(N, generator=g)
    x = 0.5 + ((2 * y - 1) * a).view(-1, 1, 1, 1) + _zero_mean_noise(N, 0.05, g)
    return x.clamp(0, 1), y


def constant(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Constant images, 0.2 (dark) or 0.8 (bright); the seed only shuffles the labels."""
    y = torch.randperm(N, generator=torch.Generator().manual_seed(seed)) % 2
    return (0.5 + 0.3 * (2 * y - 1)).view(-1, 1, 1, 1).expand(N, *SHAPE).float().clone(), y


def at_0_2(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Brightness exactly 0.5 +- 0.2, plus zero-mean texture of +-0.05."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(N) % 2
    return 0.5 + ((2 * y - 1) * 0.2).view(-1, 1, 1, 1) + _zero_mean_noise(N, 0.05, g), y


Case = tuple[Callable[[], nn.Module], Callable[[int], tuple[torch.Tensor, torch.Tensor]], list[float]]
#: per check: the model that masks gradients its way, its data, the epsilons evaluated
MASKED: dict[str, Case] = {
    "large-eps": (lambda: Brightness(bits=1), graded, [0.1]),
    "monotonic": (RoughnessBand, constant, [0.2]),
    "iterative-beats-single-step": (Trap, at_0_2, [0.1]),
    "more-steps-change-little": (lambda: Brightness(scale=1e4), graded, [0.1]),
    "black-box-not-better": (lambda: Brightness(bits=8), graded, [0.1]),
}


def _evaluate(model: nn.Module, data: Callable[[int], tuple[torch.Tensor, torch.Tensor]], eps: list[float],
              seed: int = 0) -> RobustnessReport:  # fmt: skip
    x, y = data(seed)
    return evaluate(_lab(model), x, y, ["fgsm", "pgd"], eps, checks=True, probe_n=N, progress=False)


def _plain_report() -> RobustnessReport:
    """The healthy model's report without checks (the checks below are set by hand)."""
    x, y = graded(0)
    return evaluate(_lab(Brightness()), x, y, ["fgsm", "pgd"], [0.1], checks=False, progress=False)


def _check(report: RobustnessReport, name: str) -> MaskingCheck:
    found = [c for c in report.checks if c.name == name]
    assert len(found) == 1, [c.name for c in report.checks]
    return found[0]


def _details(report: RobustnessReport) -> list[tuple[str, str, str]]:
    return [(c.name, c.status, c.detail) for c in report.checks]


# ---------------------------------------------------------------- each check fires


def test_large_eps_fires_on_a_binarized_input() -> None:
    model, data, eps = MASKED["large-eps"]
    report = _evaluate(model(), data, eps)
    c = _check(report, "large-eps")
    assert c.passed is False and c.status == "FAIL", _details(report)
    # gradients are exactly zero, so PGD at eps 1 is its random start (drawn per image): 95.3%
    # stay correct (seeds 0..9: 93.8..100%, 91.8..98 points above the 2% limit)
    assert c.numbers["eps"] == 1.0 and c.numbers["accuracy"] >= 0.5
    assert "95.3%" in c.detail and "<= 2%" in c.detail
    assert report.clean_accuracy == 1.0 and report.results[-1].robust_accuracy == 1.0
    assert any("gradient-masking check failed: large-eps" in w for w in report.warnings)


def test_monotonic_fires_with_a_single_epsilon_through_its_own_ladder() -> None:
    model, data, eps = MASKED["monotonic"]
    report = _evaluate(model(), data, eps)
    c = _check(report, "monotonic")
    assert c.passed is False, _details(report)
    # the report has one non-zero epsilon (nothing to compare there); the ladder does it:
    # PGD-20 leaves 100% at eps/8, 0% at eps/4, 100% at eps/2, eps and 1 (every seed 0..9)
    assert c.numbers["ladder_eps"] == pytest.approx([0.025, 0.05, 0.1, 0.2, 1.0])
    assert c.numbers["ladder_accuracy"] == pytest.approx([1.0, 0.0, 1.0, 1.0, 1.0])
    assert c.numbers["eps"] == [0.2] and c.numbers["accuracy"] == [1.0]
    assert "probe 0.0% at 0.05 -> 100.0% at 0.1" in c.detail


def test_monotonic_compares_the_reports_own_epsilons_too() -> None:
    report = _evaluate(RoughnessBand(), constant, [0.05, 0.2])
    c = _check(report, "monotonic")
    assert c.passed is False
    assert c.numbers["eps"] == [0.05, 0.2] and c.numbers["accuracy"] == [0.0, 1.0]
    assert "report 0.0% at 0.05 -> 100.0% at 0.2" in c.detail


def test_iterative_beats_single_step_fires_when_small_steps_are_trapped() -> None:
    model, data, eps = MASKED["iterative-beats-single-step"]
    report = _evaluate(model(), data, eps)
    c = _check(report, "iterative-beats-single-step")
    assert c.passed is False, _details(report)
    # FGSM fools all 64, PGD-20 none (every seed 0..9, margin 98.4 points)
    assert c.numbers["fgsm"] == 0.0 and c.numbers["pgd20"] == 1.0
    assert "FGSM leaves 0.0%, PGD-20 100.0%" in c.detail
    # the trap is what fails, not the rest: large steps and a large eps still work
    assert _check(report, "large-eps").passed is True


def test_more_steps_change_little_fires_on_a_saturated_softmax() -> None:
    model, data, eps = MASKED["more-steps-change-little"]
    report = _evaluate(model(), data, eps)
    c = _check(report, "more-steps-change-little")
    assert c.passed is False, _details(report)
    # CE gradients underflow to exactly 0: PGD-20 (CE) 100%, PGD-100x5 (margin) 68.8% = the
    # true robust accuracy of the unsaturated model (seeds 0..9: gain 14.1..32.8 points, 11.1..29.8 past the
    # 3-point limit). Its large-eps check fails too (PGD-20 CE at eps 1: 92.2..100%; bf16 and fp32 differ
    # by one example at seed 2, the only precision difference measured).
    assert c.numbers["pgd20"] == 1.0 and c.numbers["pgd100x5_margin"] <= 0.9
    healthy = _evaluate(Brightness(), graded, [0.1])
    assert c.numbers["pgd100x5_margin"] == pytest.approx(healthy.results[-1].robust_accuracy)


@pytest.mark.skipif(not HAS_SQUARE, reason="no square attack registered")
def test_black_box_not_better_fires_on_quantized_pixels() -> None:
    model, data, eps = MASKED["black-box-not-better"]
    report = _evaluate(model(), data, eps)
    c = _check(report, "black-box-not-better")
    assert c.passed is False, _details(report)
    # uint8 quantization zeroes every gradient, so the white-box attacks stay at 100%; Square,
    # seeing only scores, leaves 78.1% (seeds 0..9: 12.5..29.7 points better, 10.5..27.7 past the 2-point limit)
    assert c.numbers["white_box"] == 1.0 and c.numbers["square"] <= 0.9


# ---------------------------------------------------------------- healthy models pass


@pytest.fixture(scope="module")
def healthy_report() -> RobustnessReport:
    return _evaluate(Brightness(), graded, [0.1])


@pytest.mark.parametrize("name", masking.CHECK_NAMES)
def test_each_check_passes_on_a_healthy_linear_model(healthy_report: RobustnessReport, name: str) -> None:
    c = _check(healthy_report, name)
    if name == "black-box-not-better" and not HAS_SQUARE:
        assert c.status == "not run"
        return
    assert c.passed is True and c.status == "pass", _details(healthy_report)
    n = c.numbers
    # measured (seeds 0..9): every white-box attack finds the optimum, so the comparisons are
    # exact ties (FGSM = PGD-20 = PGD-100x5 = the true 68.8%), PGD at eps 1 leaves 0%, the
    # ladder falls 100 / 100 / 93.8 / 68.8 / 0% (seed 0), and Square trails by 1.6..9.3 points
    if name == "large-eps":
        assert n["accuracy"] == 0.0
    elif name == "monotonic":
        assert n["ladder_accuracy"] == sorted(n["ladder_accuracy"], reverse=True)
    elif name == "iterative-beats-single-step":
        assert n["pgd20"] == n["fgsm"]
    elif name == "more-steps-change-little":
        assert n["pgd20"] == n["pgd100x5_margin"]
    else:
        assert n["square"] >= n["white_box"]


def test_every_check_passes_on_a_trained_network_at_a_single_epsilon(trained_fastnet: Any) -> None:
    m, x, y = trained_fastnet.model, trained_fastnet.x, trained_fastnet.y
    report = evaluate(m, x, y, ["fgsm", "pgd"], [0.1], checks=True, probe_n=32, progress=False)
    assert not report.failed_checks, _details(report)
    assert len(report.unrun_checks) == (0 if HAS_SQUARE else 1)
    # measured (attack seeds 0..2): ladder 87.5 / 84.4 / 56.2 / 18.8 / 0%, FGSM = PGD-20 =
    # PGD-100x5 = 18.8%, Square 21.9..28.1%
    ladder = _check(report, "monotonic").numbers["ladder_accuracy"]
    assert len(ladder) == 5 and ladder[-1] == 0.0


# ---------------------------------------------------------------- "not run" is never a pass


def test_without_square_black_box_is_not_run(monkeypatch: pytest.MonkeyPatch) -> None:
    if HAS_SQUARE:
        monkeypatch.delitem(ATTACKS._items, "square")
    report = _evaluate(Brightness(), graded, [0.1])
    c = _check(report, "black-box-not-better")
    assert c.passed is None and c.status == "not run" and c.detail.startswith("not run")
    assert report.unrun_checks == [c] and c not in report.failed_checks
    assert "4 of 5 passed, 1 not run (black-box-not-better)" == text.checks_summary(report)


def test_a_square_that_cannot_load_is_not_run(monkeypatch: pytest.MonkeyPatch) -> None:
    class Broken(Attack):
        name = "square"

        def __init__(self, **kwargs: Any) -> None:
            raise LabError("the AutoAttack package is not installed")

        def perturb(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                    target: torch.Tensor | None) -> torch.Tensor:  # fmt: skip
            raise AssertionError

    monkeypatch.setitem(ATTACKS._items, "square", Broken)
    c = _check(_evaluate(Brightness(), graded, [0.1]), "black-box-not-better")
    assert c.status == "not run" and "AutoAttack package is not installed" in c.detail


def test_an_empty_probe_runs_no_check() -> None:
    report = _plain_report()
    checks = masking.run_checks(_lab(Brightness()), torch.zeros(0, *SHAPE), torch.zeros(0, dtype=torch.int64),
                                report, norm="linf")  # fmt: skip
    assert [c.name for c in checks] == list(masking.CHECK_NAMES)
    assert all(c.passed is None and "no correctly classified example" in c.detail for c in checks)


def _mixed_report() -> RobustnessReport:
    report = _plain_report()
    report.checks = [
        MaskingCheck("large-eps", True, "PGD-20 at eps 1 leaves 0.0%", {"accuracy": 0.0}),
        MaskingCheck("more-steps-change-little", False, "PGD-20 100.0%, PGD-100x5 (margin) 68.8%", {}),
        MaskingCheck("black-box-not-better", None, "not run: no square attack registered", {}),
    ]
    return report


def test_status_and_the_report_lists() -> None:
    report = _mixed_report()
    assert [c.status for c in report.checks] == ["pass", "FAIL", "not run"]
    assert [c.name for c in report.failed_checks] == ["more-steps-change-little"]
    assert [c.name for c in report.unrun_checks] == ["black-box-not-better"]
    assert text.checks_summary(report) == "1 of 3 passed, 1 FAILED, 1 not run (black-box-not-better)"


def test_every_renderer_says_not_run(tmp_path: Path) -> None:
    from lab.present.reports import check_table

    report = _mixed_report()
    md = markdown.report_markdown(report)
    section = md.split("## Gradient-masking checks", 1)[1].split("\n## ", 1)[0]
    assert "| black-box-not-better | not run |" in section
    assert "| large-eps | PASS |" in section and "| more-steps-change-little | **FAIL** |" in section
    assert "1 of 3 passed, 1 FAILED, 1 not run" in section
    colored = terminal.report_table(report, color=True)
    line = next(ln for ln in colored.splitlines() if ANSI.sub("", ln).startswith("  not run  black-box-not-better"))
    assert line.startswith(terminal.YELLOW) and "PASS" not in line
    plain = ANSI.sub("", colored)
    assert plain == terminal.report_table(report, color=False)
    assert "gradient-masking checks: 1 of 3 passed, 1 FAILED, 1 not run" in plain
    assert [row["result"] for row in check_table(report)] == ["PASS", "FAIL", "not run"]
    files.write_report(report, tmp_path)  # the plot names the unrun check too; it must not raise
    assert (tmp_path / "accuracy_vs_eps.png").stat().st_size > 0


def test_reports_round_trip_not_run_and_old_reports_still_load(tmp_path: Path) -> None:
    report = _mixed_report()
    loaded = RobustnessReport.load(report.save(tmp_path / "new.json"))
    assert [c.passed for c in loaded.checks] == [True, False, None]
    # a report written before "not run" existed: booleans only, a skip recorded as passed
    old = json.loads((tmp_path / "new.json").read_text())
    old["checks"] = [
        {"name": "large-eps", "passed": True, "detail": "PGD-20 at eps 1 leaves 0.0% accuracy", "numbers": {}},
        {"name": "monotonic", "passed": False, "detail": "accuracy rises with epsilon", "numbers": {}},
        {"name": "black-box-not-better", "passed": True, "detail": "skipped: no square attack registered",
         "numbers": {}},
    ]  # fmt: skip
    (tmp_path / "old.json").write_text(json.dumps(old))
    loaded = RobustnessReport.load(tmp_path / "old.json")
    assert [c.status for c in loaded.checks] == ["pass", "FAIL", "not run"]
    assert [c.name for c in loaded.unrun_checks] == ["black-box-not-better"]
