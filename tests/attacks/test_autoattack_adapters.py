"""The official AutoAttack behind the lab's contract: autoattack, apgd, apgd_t, square.

(The registry-wide invariants live in test_attack_contract.py; these are the adapter's own.)
"""

from __future__ import annotations

import logging
import sys

import pytest
import torch
from torch import nn

from attacks import ATTACKS
from attacks.autoattack_common import import_autoattack, set_apgd_iters
from lab.core.errors import LabError
from lab.models import LabModel, ModelInfo


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def test_autoattack_is_at_least_as_strong_as_pgd20(trained_fastnet) -> None:
    m, x, y = trained_fastnet.model, trained_fastnet.x, trained_fastnet.y
    pgd = accuracy(m, ATTACKS.get("pgd")(eps=0.05, steps=20)(m, x, y), y)
    aa = ATTACKS.get("autoattack")(eps=0.05, version="custom", attacks=("apgd-ce", "apgd-t"), steps=20)
    robust = accuracy(m, aa(m, x, y), y)
    # Measured over fixture seeds 0-4, with and without LAB_PRECISION=fp32: AutoAttack minus
    # PGD-20 is -0.016 to 0.0 (never weaker); the 0.02 slack is one image of 64.
    assert robust <= pgd + 0.02, f"AutoAttack {robust:.2f} vs PGD-20 {pgd:.2f}"


def test_standard_version_runs_every_sub_attack(trained_fastnet, caplog: pytest.LogCaptureFixture) -> None:
    """APGD-CE, APGD-T, FAB-T and Square all run (tiny budgets, a few examples), logging only."""
    m, x, y = trained_fastnet.model, trained_fastnet.x[:12], trained_fastnet.y[:12]
    attack = ATTACKS.get("autoattack")(eps=0.02, steps=3, n_queries=20)
    with caplog.at_level(logging.DEBUG, logger="auto-attack"):
        x_adv = attack(m, x, y)
    assert accuracy(m, x_adv, y) <= accuracy(m, x, y)
    ran = " ".join(r.getMessage() for r in caplog.records if r.name == "auto-attack")
    for sub in ("apgd-ce", "apgd-t", "fab-t", "square"):
        assert f"running {sub}" in ran or "no robust datapoints left" in ran
    cfg = attack.config()
    assert cfg["attacks"] == ["apgd-ce", "apgd-t", "fab-t", "square"] and cfg["standard_budget"] is False


def test_nothing_printed_rng_and_tracer_left_alone(trained_fastnet, capsys: pytest.CaptureFixture[str]) -> None:
    m, x, y = trained_fastnet.model, trained_fastnet.x[:8], trained_fastnet.y[:8]

    def tracer(frame, event, arg):  # type: ignore[no-untyped-def]
        return None

    rng = torch.get_rng_state()
    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        ATTACKS.get("autoattack")(eps=0.1, version="custom", attacks=("apgd-ce", "square"), steps=3,
                                  n_queries=10)(m, x, y)  # fmt: skip
        after = sys.gettrace()
    finally:
        sys.settrace(previous)
    assert after is tracer, "AutoAttack's dynamic-defense check switched the caller's tracer off"
    assert torch.equal(rng, torch.get_rng_state()), "the global torch RNG was reseeded"
    assert capsys.readouterr().out == ""


def test_short_apgd_gets_the_checkpoints_of_its_length() -> None:
    aa = import_autoattack()
    built = aa.autopgd_base.APGDAttack(nn.Identity(), n_iter=10, eps=0.1)
    changed = aa.autopgd_base.APGDAttack(nn.Identity(), n_iter=100, eps=0.1)
    set_apgd_iters(changed, 10)
    for k in ("n_iter", "n_iter_orig", "n_iter_2", "n_iter_min", "size_decr"):
        assert getattr(changed, k) == getattr(built, k), k


def test_cost_orders_the_suite_above_single_attacks() -> None:
    standard = ATTACKS.get("autoattack")(eps=0.03).cost
    assert standard > ATTACKS.get("apgd")(eps=0.03).cost > ATTACKS.get("pgd")(eps=0.03).cost
    assert ATTACKS.get("autoattack")(eps=0.03, version="plus").cost > standard
    assert ATTACKS.get("apgd_t")(eps=0.03).cost == 900
    assert ATTACKS.get("square")(eps=0.03).kind == "black-box"


def _linear_model(classes: int) -> LabModel:
    info = ModelInfo("linear", "toy", (1, 2, 2), tuple("abcdef"[:classes]), (0.0,), (1.0,))
    return LabModel(nn.Sequential(nn.Flatten(), nn.Linear(4, classes)), info).eval()


@pytest.mark.parametrize(
    ("name", "settings", "classes", "message"),
    [
        ("apgd_t", {}, 3, "APGD-T needs a model with at least 4 classes, this one has 3"),
        ("autoattack", {}, 3, "targeted attacks .* at least 4 classes, this one has 3"),
        ("autoattack", {"version": "rand"}, 2, "APGD-DLR needs a model with at least 3 classes, this one has 2"),
        ("apgd", {"loss": "dlr"}, 2, "APGD-DLR needs a model with at least 3 classes, this one has 2"),
    ],
)
def test_too_few_classes_is_one_sentence(name: str, settings: dict, classes: int,  # type: ignore[type-arg]
                                         message: str) -> None:  # fmt: skip
    x, y = torch.rand(2, 1, 2, 2), torch.tensor([0, 1])
    with pytest.raises(LabError, match=message):
        ATTACKS.get(name)(eps=0.1, **settings)(_linear_model(classes), x, y)


@pytest.mark.parametrize(
    ("name", "settings", "message"),
    [
        ("autoattack", {"version": "fast"}, "unknown AutoAttack version 'fast'; choose one of: standard"),
        ("autoattack", {"version": "custom"}, "version 'custom' needs attacks="),
        ("autoattack", {"version": "custom", "attacks": "apgd-ce"}, "version 'custom' needs attacks="),
        ("autoattack", {"attacks": ["apgd-ce"]}, "version 'standard' fixes its attacks"),
        ("autoattack", {"version": "custom", "attacks": ["apgd"]}, "unknown AutoAttack sub-attack 'apgd'"),
        ("autoattack", {"version": "custom", "attacks": ["fab", "fab"]}, "must not repeat"),
        ("autoattack", {"batch_size": 0}, "batch_size must be a whole number >= 1, got 0"),
        ("autoattack", {"steps": 0}, "steps must be a whole number >= 1, got 0"),
        ("autoattack", {"n_queries": 2.5}, "n_queries must be a whole number >= 1, got 2.5"),
        ("autoattack", {"norm": "l1"}, "does not support the 'l1' norm"),
        ("apgd", {"loss": "margin"}, "unknown APGD loss 'margin'; choose one of: ce, dlr"),
        ("apgd", {"steps": 0}, "steps must be a whole number >= 1, got 0"),
        ("apgd", {"restarts": -1}, "restarts must be a whole number >= 1, got -1"),
        ("apgd", {"rho": 0}, "rho must be a number > 0, got 0"),
        ("apgd_t", {"n_target_classes": 0}, "n_target_classes must be a whole number >= 1, got 0"),
        ("square", {"n_queries": 0}, "n_queries must be a whole number >= 1, got 0"),
        ("square", {"p_init": 1.5}, "p_init must be a fraction of the image in \\(0, 1\\], got 1.5"),
        ("square", {"loss": "dlr"}, "unknown Square loss 'dlr'"),
    ],
)
def test_bad_settings_are_one_sentence(name: str, settings: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(LabError, match=message):
        ATTACKS.get(name)(eps=0.1, **settings)
