"""Invariants over every registered defense (table-driven over the registry), the epsilon
warm-up, and bad ``[defense]`` settings as one sentence + exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from defenses import DEFENSES, build_defense
from lab.cli import main
from lab.core.errors import ConfigError, LabError
from lab.core.settings import setting_names
from lab.models import LabModel, ModelInfo, build_model
from lab.training.config import load_config

ROOT = Path(__file__).resolve().parents[2]
ADVERSARIAL = [n for n in DEFENSES.names() if DEFENSES.get(n).adversarial]  # they train on adversarial examples
EPS = {"linf": 0.1, "l2": 1.5}
CASES = [(name, norm) for name in ADVERSARIAL for norm in ("linf", "l2")]
SHAPE = (1, 28, 28)


def tiny_model(seed: int = 0) -> LabModel:
    torch.manual_seed(seed)
    info = ModelInfo("fastnet", "toy", SHAPE, tuple("abcdefghij"), (0.5,), (0.25,))
    return build_model(info)


def bn_model() -> LabModel:
    """A model with BatchNorm and dropout, to see which mode the inner attack runs in."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                        nn.Dropout(0.5), nn.Linear(4 * 13 * 13, 10))  # fmt: skip
    return LabModel(net, ModelInfo("bn", "toy", SHAPE, tuple("abcdefghij"), (0.5,), (0.25,)))


def batch(n: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.rand(n, *SHAPE, generator=g), torch.randint(0, 10, (n,), generator=g)


def make(name: str, norm: str = "linf", **kw: object):  # type: ignore[no-untyped-def]
    settings = {"norm": norm, "eps": EPS[norm], **({} if name == "fgsm_rs" else {"steps": 3}), **kw}
    return build_defense(name, settings, input_shape=SHAPE)


@pytest.mark.parametrize(("name", "norm"), CASES)
def test_inner_attack_stays_in_the_ball_and_leaves_the_model_as_it_was(name: str, norm: str) -> None:
    model, (x, y) = bn_model().train(), batch()
    frozen = model.net[0].bias
    frozen.requires_grad_(False)
    stats = model.net[1].running_mean.clone()
    modes: list[bool] = []
    hook = model.register_forward_pre_hook(lambda mod, inp: modes.append(mod.training))
    defense = make(name, norm)
    try:
        x_adv = defense.attack(model, x, y)
    finally:
        hook.remove()
    assert modes and not any(modes), "the inner maximization must run in eval mode"
    assert torch.equal(model.net[1].running_mean, stats), "the attack updated BatchNorm statistics"
    assert model.training and not frozen.requires_grad
    assert all(p.grad is None for p in model.parameters()), "the attack left parameter gradients"
    assert x_adv.shape == x.shape and x_adv.dtype == x.dtype and not x_adv.requires_grad
    assert float(x_adv.min()) >= 0.0 and float(x_adv.max()) <= 1.0
    assert float(defense.threat.norm(x_adv - x).max()) <= EPS[norm] * (1 + 1e-5) + 1e-6
    # measured over bn_model seeds 0-4: the largest move is 0.98-1.00 of eps for every defense and norm
    assert float(defense.threat.norm(x_adv - x).max()) > 0.3 * EPS[norm], "the attack did not move"


@pytest.mark.parametrize("name", DEFENSES.names())
def test_loss_is_a_differentiable_scalar_with_logits(name: str) -> None:
    model, (x, y) = tiny_model().train(), batch()
    defense = build_defense(name, {"eps": 0.1} if "eps" in setting_names(DEFENSES.get(name)) else {}, input_shape=SHAPE)
    loss, logits = defense.loss(model, x, y)
    assert loss.shape == () and loss.dtype == torch.float32 and torch.isfinite(loss)
    assert logits.shape == (16, 10)
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    assert model.training


@pytest.mark.parametrize("name", ADVERSARIAL)
def test_inner_attack_beats_random_noise_on_its_own_objective(name: str) -> None:
    """PGD/FGSM raise the cross-entropy, TRADES the KL to the clean prediction, beyond what a
    random point of the ball does (measured over tiny_model seeds 0-4, untrained: cross-entropy
    2.46-2.53 against noise's 2.30-2.31 for FGSM-RS and PGD-AT; TRADES' KL 0.22-0.26 against
    0.0015-0.0018)."""
    model, (x, y) = tiny_model().eval(), batch(64)
    defense = make(name)
    noise = (x + defense.threat.init(x, torch.Generator().manual_seed(2))).clamp(0, 1)
    with torch.no_grad():
        clean = model(x).log_softmax(1)

        def objective(xs: torch.Tensor) -> float:
            z = model(xs).log_softmax(1)
            if name == "trades":
                return float(nn.functional.kl_div(z, clean, log_target=True, reduction="sum"))
            return float(nn.functional.cross_entropy(z, y))

        assert objective(defense.attack(model, x, y)) > objective(noise)


def test_epsilon_warm_up_is_linear_per_step() -> None:
    defense = make("pgd_at", eps_warmup_epochs=2.0)
    model, (x, y) = tiny_model(), batch()
    defense.set_progress(0.0)
    assert defense.eps_now == 0.0
    assert torch.equal(defense.attack(model, x, y), x), "eps 0 trains on the clean batch"
    defense.set_progress(0.5)
    assert defense.eps_now == pytest.approx(0.025) and defense.threat.eps == pytest.approx(0.025)
    assert defense.alpha_now == pytest.approx(defense.alpha / 4)
    assert float(defense.threat.norm(defense.attack(model, x, y) - x).max()) <= 0.025 + 1e-6
    defense.set_progress(7.0)
    assert defense.eps_now == pytest.approx(0.1)


def test_defaults_and_settings_record() -> None:
    assert make("pgd_at").alpha == pytest.approx(2.5 * 0.1 / 3)
    assert make("fgsm_rs").alpha == pytest.approx(1.25 * 0.1)
    assert make("trades").beta == 6.0
    assert make("fgsm_rs").guard_mode == "rollback" and make("pgd_at").guard_mode == "off"
    s = make("trades").settings()
    assert s["beta"] == 6.0 and s["steps"] == 3 and s["inner_mode"] == "eval" and "random_start" not in s
    # what checkpoints record, key by key and in this order (the guard's numbers only when it is on)
    common = ["eps_warmup_epochs", "guard"]
    guard = ["guard_drop", "guard_floor", "guard_batch", "guard_steps"]
    assert list(make("pgd_at").settings()) == ["norm", "eps", "steps", "alpha", "random_start", *common, "inner_mode"]
    assert list(make("trades").settings()) == ["norm", "eps", "steps", "alpha", "beta", *common, "inner_mode"]
    assert list(make("fgsm_rs").settings()) == ["norm", "eps", "alpha", *common, *guard, "inner_mode"]
    assert build_defense("none", input_shape=SHAPE).settings() == {}


def test_settings_are_keyword_only_init_arguments_checked_by_the_recipe() -> None:
    assert setting_names(DEFENSES.get("pgd_at")) == [
        "norm", "eps", "eps_warmup_epochs", "guard", "guard_drop", "guard_floor", "guard_batch", "guard_steps",
        "steps", "alpha", "random_start"]  # fmt: skip
    assert setting_names(DEFENSES.get("none")) == []
    for name, settings, message in [
        ("pgd_at", {"eps": 0.0}, "eps must be positive for pgd_at (the radius it trains against), got 0.0"),
        ("fgsm_rs", {"eps": 0.1, "steps": 3}, "defense 'fgsm_rs' has no setting 'steps'; its settings are: norm"),
        ("trades", {"eps": 0.1, "beta": "6"}, "setting beta of defense 'trades' must be a number, got '6'"),
        ("pgd_at", {"eps": 0.1, "guard_floor": 1.0}, "guard_floor is an accuracy below 1, got 1.0"),
    ]:
        with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
            build_defense(name, settings, input_shape=SHAPE)


def test_every_recipe_with_a_defense_loads() -> None:
    for stem, name in [("mnist_fgsm_rs", "fgsm_rs"), ("mnist_pgd_at", "pgd_at"), ("mnist_trades", "trades"),
                       ("fashion_pgd_at", "pgd_at")]:  # fmt: skip
        cfg = load_config(ROOT / "configs" / f"{stem}.toml")
        assert cfg.defense["name"] == name and cfg.defense["eps"] > 0
    assert load_config(ROOT / "configs" / "mnist_trades.toml").defense["beta"] == 6.0


# ---------------------------------------------------------------- bad input: one sentence, exit 2

RECIPE = str(ROOT / "configs" / "mnist_pgd_at.toml")


@pytest.mark.parametrize(
    ("sets", "fragment"),
    [
        (["defense.name=pgd"], "unknown defense 'pgd' (did you mean 'pgd_at'?)"),
        (["defense.eps=-0.1"], "defense.eps must not be negative, got -0.1"),
        (["defense.eps=1.5"], "defense.eps 1.5 is above the data range"),
        (["defense.eps=0"], "defense.eps must be positive for pgd_at"),
        (["defense.eps=nan"], "defense.eps must be a finite number"),
        (["defense.steps=0"], "defense.steps must be positive, got 0"),
        (["defense.name=trades", "defense.beta=-1"], "defense.beta must not be negative, got -1.0"),
        (["defense.guard=sometimes"], "defense.guard must be one of auto, rollback, stop, off, got 'sometimes'"),
        (["defense.norm=l1"], "defense.norm must be one of linf, l2"),
        (["defense.beta=3"], "defense.beta is a setting of trades; pgd_at does not use it"),
        (["defense.name=none"], "defense.eps has no effect without a defense"),
        (["defense.guard_drop=20"], "defense.guard_drop is a fraction of accuracy in (0, 1]"),
        (["defense.alpha=-1"], "defense.alpha must not be negative"),
        (["defense.epsilon=0.3"], "unknown config key 'defense.epsilon'"),
    ],
)
def test_bad_defense_settings_are_one_sentence_and_exit_2(sets: list[str], fragment: str, capsys,
                                                          tmp_path: Path) -> None:  # fmt: skip
    args = ["train", "--config", RECIPE, "--out", str(tmp_path / "x"), "--no-progress"]
    for s in sets:
        args += ["--set", s]
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: ") and fragment in last, last
    assert not (tmp_path / "x" / "model.safetensors").exists()


def test_l2_epsilon_above_the_image_diameter_is_refused() -> None:
    with pytest.raises(LabError, match="L2 epsilon 40 is above the data range"):
        build_defense("pgd_at", {"norm": "l2", "eps": 40.0}, input_shape=SHAPE)
    with pytest.raises(ConfigError, match="defense.name: unknown defense"):
        load_config(None, ["defense.name=madry"])
