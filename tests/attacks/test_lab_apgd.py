"""The lab's APGD (attacks/lab_apgd.py) against the official one it re-implements, and the
``autoattack-fast`` suite built on it.

(The registry-wide invariants, which cover ``lab_apgd`` too, live in test_attack_contract.py.)
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from attacks import ATTACKS
from attacks.autoattack_common import import_autoattack
from lab.core.errors import LabError
from lab.evaluation.engine import evaluate
from lab.evaluation.suites import suite_specs


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def official(model: nn.Module, norm: str, eps: float, steps: int, loss: str) -> object:
    aa = import_autoattack()
    cls = aa.autopgd_base.APGDAttack_targeted if loss == "dlr-targeted" else aa.autopgd_base.APGDAttack
    kw = {} if loss == "dlr-targeted" else {"loss": loss}
    a = cls(model, n_iter=steps, norm={"linf": "Linf", "l2": "L2"}[norm], eps=eps, verbose=False, device="cpu", **kw)
    a.init_hyperparam(torch.zeros(1, 1, 28, 28))
    return a


@pytest.mark.parametrize(("norm", "eps", "loss", "targets"),
                         [("linf", 0.05, "ce", 0), ("linf", 0.05, "dlr", 0), ("linf", 0.05, "dlr", 3),
                          ("l2", 1.0, "ce", 0)])  # fmt: skip
def test_same_trajectory_as_the_official_apgd(trained_fastnet, norm: str, eps: float, loss: str,
                                              targets: int) -> None:  # fmt: skip
    """From the same start and in fp32, every run's best point and best loss equal the official
    APGD's (its step sizes, momentum and checkpoints), and with the active set on, the images
    it fools are exactly those the official run fools at some iterate."""
    m, x, y = trained_fastnet.model, trained_fastnet.x[:24], trained_fastnet.y[:24]
    steps = 30
    ours = ATTACKS.get("lab_apgd")(eps=eps, norm=norm, loss=loss, steps=steps, targets=targets, precision="fp32",
                                   early_stop=False)  # fmt: skip
    start = ours._start(x, 0)
    t = None
    if targets:
        with torch.no_grad():
            t = m(x).argsort(1, descending=True)[:, 1]  # the official APGD-T's first target
    owner = torch.arange(len(x))
    with torch.enable_grad():
        best, best_loss, _ = ours._run(m, x, y, t, owner, start, len(x))
    ref = official(m, norm, eps, steps, "dlr-targeted" if targets else loss)
    if targets:
        ref.y_target = t
    with torch.enable_grad():
        ref_best, ref_acc, ref_loss, _ = ref.attack_single_run(x, y, x_init=start.clone())
    assert torch.allclose(best_loss, ref_loss, atol=1e-5, rtol=1e-5)
    assert torch.allclose(best, ref_best, atol=1e-6)

    stop = ATTACKS.get("lab_apgd")(eps=eps, norm=norm, loss=loss, steps=steps, targets=targets, precision="fp32")
    with torch.enable_grad():
        _, _, ok = stop._run(m, x, y, t, owner, start, len(x))
    assert torch.equal(ok, ~ref_acc.bool())
    assert ok.any() and not ok.all()  # the comparison has both kinds of image in it


def test_active_set_attacks_the_fooled_no_further(trained_fastnet) -> None:
    """Forward rows seen by the model: an image leaves at the first iterate that fools it, so a
    run on a non-robust model costs far fewer rows than ``steps`` per image."""
    m, x, y = trained_fastnet.model, trained_fastnet.x, trained_fastnet.y
    rows = []
    h = m.register_forward_hook(lambda mod, inp, out: rows.append(inp[0].shape[0]))
    try:
        x_adv = ATTACKS.get("lab_apgd")(eps=0.1, steps=50, precision="fp32")(m, x, y)
    finally:
        h.remove()
    fooled = accuracy(m, x, y) - accuracy(m, x_adv, y)
    assert fooled > 0.5  # eps 0.1 on Fashion-MNIST fools most of the fixture's images
    assert sum(rows) < 0.5 * 51 * len(x)  # the official loop would see 51 rows per image


def test_targets_are_the_next_best_classes_and_capped(trained_fastnet) -> None:
    m, x, y = trained_fastnet.model, trained_fastnet.x[:16], trained_fastnet.y[:16]
    attack = ATTACKS.get("lab_apgd")(eps=0.03, loss="dlr", targets=20, steps=5, precision="fp32")
    x_adv = attack(m, x, y)  # 20 targets capped at 9 (ten classes)
    assert x_adv.shape == x.shape
    assert attack.cost == 100 and attack.config()["targets"] == 20


def test_bad_settings_are_one_sentence() -> None:
    cls = ATTACKS.get("lab_apgd")
    for kw, msg in [({"targets": -1}, "targets must be a whole number >= 0"), ({"loss": "margin"}, "APGD loss"),
                    ({"rho": 1.5}, "rho must be a fraction"), ({"precision": "fp8"}, "precision")]:  # fmt: skip
        with pytest.raises(LabError, match=msg):
            cls(eps=0.1, **kw)


def test_fast_suite_agrees_with_the_official_autoattack(trained_fastnet) -> None:
    """The suite (lab APGD-CE, lab APGD-T, official Square) against the official AutoAttack's
    standard version on the fixture's 64 images at eps 0.03, where about half are robust.
    Measured over fixture seeds 0-4: the two robust accuracies differ by 0 to 1 image; the
    limit is 2 images (the two draw different random starts)."""
    m, x, y = trained_fastnet.model, trained_fastnet.x, trained_fastnet.y
    specs = [s for s in suite_specs("autoattack-fast")]
    specs[-1] = type(specs[-1])("square", {"n_queries": 300, "rescale_schedule": False}, label="Square-300")
    fast = evaluate(m, x, y, specs, [0.03], checks=False, progress=False)
    aa = ATTACKS.get("autoattack")(eps=0.03, n_queries=300)
    ref = accuracy(m, aa(m, x, y), y)
    assert abs(fast.results[0].robust_accuracy - ref) <= 2 / 64 + 1e-9
    titles = {a.attack for a in fast.results[0].attacks}
    assert titles == {"APGD-CE (lab)", "APGD-T (lab, 9 targets)", "Square-300"}
