"""The evaluator: active set = attacking everything, worst case per example, honest
headline, and gradient-masking checks that fire on a masked model only."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from attacks import ATTACKS
from lab.core.errors import LabError
from lab.evaluation.engine import AttackSpec, evaluate
from lab.evaluation.suites import suite_specs
from lab.models import LabModel

DETERMINISTIC = [AttackSpec("fgsm"), AttackSpec("bim", {"steps": 5}), AttackSpec("mifgsm", {"steps": 5})]


def test_active_set_gives_the_numbers_of_attacking_everything(trained_fastnet) -> None:
    m, x, y = trained_fastnet.model, trained_fastnet.x, trained_fastnet.y
    eps = 0.05
    report = evaluate(m, x, y, DETERMINISTIC, [eps], checks=False, progress=False, batch_size=16)
    # brute force: every attack on every image, an example is robust only if all failed
    with torch.no_grad():
        robust = m(x).argmax(1) == y
    for spec in DETERMINISTIC:
        x_adv = spec.build(eps, "linf")(m, x, y)
        with torch.no_grad():
            robust &= m(x_adv).argmax(1) == y
    assert report.results[0].robust_accuracy == pytest.approx(float(robust.float().mean()))
    assert report.results[0].robust_examples == robust.nonzero().squeeze(1).tolist()
    # cumulative accuracy never rises along the attack order, and ends at the worst case
    after = [a.robust_accuracy_after for a in report.results[0].attacks]
    assert after == sorted(after, reverse=True) and after[-1] == report.results[0].robust_accuracy
    # later attacks only ran on what survived the earlier ones
    rows = report.results[0].attacks
    assert all(b.attacked == a.attacked - a.fooled for a, b in zip(rows, rows[1:]))


def test_report_structure_and_headline(trained_fastnet) -> None:
    m, x, y = trained_fastnet.model, trained_fastnet.x, trained_fastnet.y
    report = evaluate(m, x, y, suite_specs("quick"), [0.1, 0, 0.05], suite="quick", checks=False, progress=False)
    assert report.eps == [0.0, 0.05, 0.1]
    r0 = report.results[0]
    assert r0.attacks == [] and r0.robust_accuracy == r0.clean_accuracy == report.clean_accuracy
    assert report.headline["eps"] == 0.1
    assert report.headline["robust_accuracy"] == report.results[-1].robust_accuracy
    assert report.headline["upper_bound_only"] is True
    assert any("upper bound" in w for w in report.warnings)
    assert [a.attack for a in report.results[1].attacks] == ["fgsm", "pgd-20"]  # cheapest first
    restored = type(report).from_dict(report.to_dict())
    assert restored.results[-1].robust_accuracy == report.results[-1].robust_accuracy


def test_a_strong_attack_is_not_flagged_as_an_upper_bound(trained_fastnet) -> None:
    m, x, y = trained_fastnet.model, trained_fastnet.x[:16], trained_fastnet.y[:16]
    spec = AttackSpec("pgd", {"steps": 100})
    report = evaluate(m, x, y, [spec], [0.05], checks=False, progress=False)
    assert report.headline["upper_bound_only"] is False and not report.warnings


class _RoundInput(nn.Module):
    """Gradient masking by construction: the input is quantized, so gradients are zero."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(torch.round(x * 2) / 2)


def test_masking_checks_fire_on_a_masked_model_and_stay_quiet_on_an_honest_one(trained_fastnet) -> None:
    m, x, y = trained_fastnet.model, trained_fastnet.x, trained_fastnet.y
    honest = evaluate(m, x, y, suite_specs("quick"), [0.05, 0.1], progress=False, probe_n=32)
    failed = [c.name for c in honest.failed_checks]
    assert not failed, [(c.name, c.detail) for c in honest.checks]
    assert {c.name for c in honest.checks} >= {"large-eps", "monotonic", "iterative-beats-single-step",
                                                "more-steps-change-little"}  # fmt: skip

    masked = LabModel(_RoundInput(m.net), m.info).eval()
    masked.load_state_dict(m.state_dict(), strict=False)
    with torch.no_grad():
        keep = masked(x).argmax(1) == y
    report = evaluate(masked, x[keep], y[keep], suite_specs("quick"), [0.05, 0.1], progress=False, probe_n=32)
    fired = {c.name for c in report.failed_checks}
    assert "large-eps" in fired, [(c.name, c.detail) for c in report.checks]
    if "square" in ATTACKS:
        assert "black-box-not-better" in fired
    assert any("gradient-masking check failed" in w for w in report.warnings)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"eps": [-0.1]}, "epsilon must be a number >= 0"),
        ({"eps": [1.2]}, "above the data range"),
        ({"eps": []}, "at least one epsilon"),
        ({"attacks": ["nope"]}, "unknown attack 'nope'"),
        ({"attacks": []}, "no attack to run"),
        ({"batch_size": 0}, "batch size must be >= 1"),
    ],
)
def test_bad_arguments(trained_fastnet, kwargs: dict, message: str) -> None:
    m, x, y = trained_fastnet.model, trained_fastnet.x[:4], trained_fastnet.y[:4]
    args = {"attacks": ["fgsm"], "eps": [0.1], **kwargs}
    with pytest.raises(LabError, match=message):
        evaluate(m, x, y, args.pop("attacks"), args.pop("eps"), checks=False, progress=False, **args)


def test_unknown_suite() -> None:
    with pytest.raises(LabError, match="unknown suite 'fast'"):
        suite_specs("fast")
