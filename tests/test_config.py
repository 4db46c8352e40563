"""Recipes: every shipped recipe loads; overrides are typed; mistakes are one sentence; the method
tables are checked by their methods through the one shared coercer (:mod:`lab.core.settings`)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest

from lab.core.errors import ConfigError
from lab.core.settings import coerce_settings, setting_names
from lab.training.config import from_dict, load_config, parse_override

CONFIGS = sorted(Path(__file__).resolve().parents[1].joinpath("configs").glob("*.toml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_every_shipped_recipe_is_valid(path: Path) -> None:
    cfg = load_config(path)
    assert cfg.name == path.stem
    from lab.models import MODELS

    assert cfg.model.arch in MODELS


def test_overrides_are_typed() -> None:
    cfg = load_config(None, ["train.lr=1e-3", "train.epochs=3", "runtime.compile=true", "data.dataset=fashion-mnist"])
    assert cfg.train.lr == 0.001 and cfg.train.epochs == 3 and cfg.runtime.compile is True
    assert cfg.data.dataset == "fashion-mnist"
    assert load_config(None, ["train.lr=1"]).train.lr == 1.0  # an int is a fine float


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.epochs=abc", "train.epochs must be a whole number, got 'abc'"),
        ("train.epochs=2.5", "train.epochs must be a whole number"),
        ("runtime.compile=yes", "runtime.compile must be true or false"),
        ("train.lrr=0.1", "unknown config key 'train.lrr'"),
        ("nosuch.key=1", "unknown config key 'nosuch'"),
        ("train=1", "train must be a table"),
        ("train.optimizer=rmsprop", "train.optimizer must be one of sgd, adam, adamw"),
        ("train.lr=-0.1", "train.lr must be positive"),
        ("train.epochs=0", "train.epochs must be positive"),
        ("runtime.device=tpu", "runtime.device must be auto, cpu, cuda or cuda:N"),
        ("noequals", "--set expects key=value"),
    ],
)
def test_bad_overrides_name_the_key(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        load_config(None, [override])


def test_string_fields_take_the_raw_text() -> None:
    assert parse_override("data.dataset=fashion-mnist") == ("data.dataset", "fashion-mnist")
    assert load_config(None, ["data.data_dir=123"]).data.data_dir == "123"


def test_missing_and_broken_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[train\nlr = 1\n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_config(bad)
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("[train]\nlearning_rate = 0.1\n")
    with pytest.raises(ConfigError, match="unknown config key 'train.learning_rate'"):
        load_config(unknown)


# ---------------------------------------------------------------- method tables and the shared coercer

#: what a checkpoint's ``config.defense`` / ``config.denoiser`` has always listed (every setting of every method)
RECORD_KEYS = {
    "defense": {"name", "norm", "eps", "steps", "alpha", "random_start", "beta", "eps_warmup_epochs", "guard",
                "guard_drop", "guard_floor", "guard_batch", "guard_steps",
                "warmup_epochs", "ramp_epochs", "kappa_end", "sigma"},  # ibp's and gaussian's
    "denoiser": {"name", "classifier", "attack_eps", "attack_steps", "adv_frac", "noise", "width", "bits", "kernel",
                 "quality", "min_scale"},
}  # fmt: skip


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_the_record_lists_every_setting_and_loads_back_unchanged(path: Path) -> None:
    cfg = load_config(path)
    record = cfg.to_dict()
    for section, keys in RECORD_KEYS.items():
        assert set(record[section]) == keys
    again = from_dict(record)  # what --resume does with a checkpoint's recipe
    assert again.to_dict() == record and again.defense == cfg.defense and again.denoiser == cfg.denoiser


def test_method_tables_hold_the_chosen_method_s_settings() -> None:
    cfg = load_config(None, ["defense.name=pgd_at", "defense.eps=0.1", "defense.guard=off", "defense.beta=6"])
    assert cfg.defense["name"] == "pgd_at" and cfg.defense["eps"] == 0.1 and cfg.defense["guard"] == "off"
    assert "beta" not in cfg.defense  # another recipe's setting at its default: what a record holds for it
    assert cfg.defense_settings["steps"] == 10 and "name" not in cfg.defense_settings
    assert load_config(None).to_dict()["defense"]["beta"] == 6.0
    with pytest.raises(ConfigError, match=r"defense\.eps must be positive for pgd_at"):
        load_config(None, ["defense.name=pgd_at"])
    with pytest.raises(ConfigError, match=r"defense\.steps must be a whole number, got 2\.5"):
        load_config(None, ["defense.name=pgd_at", "defense.eps=0.1", "defense.steps=2.5"])


class _Toy:
    name = "toy"

    def __init__(self, shape: tuple[int, ...] = (1,), *, rate: float = 0.1, n: int = 1, on: bool = True,
                 mode: Literal["a", "b"] = "a", cap: float | None = None, tag: str = "") -> None:  # fmt: skip
        pass


def test_the_shared_coercer_reads_text_and_checks_types() -> None:
    assert setting_names(_Toy) == ["rate", "n", "on", "mode", "cap", "tag"]  # keyword-only: not the shape
    text = coerce_settings("toy", _Toy, {"rate": "8/255", "n": "3", "on": "false", "mode": "b", "cap": "none",
                                         "tag": "x"}, from_text=True)  # fmt: skip
    assert text == {"rate": 8 / 255, "n": 3, "on": False, "mode": "b", "cap": None, "tag": "x"}
    assert coerce_settings("toy", _Toy, {"rate": 1, "cap": 2})["rate"] == 1.0  # an int is a fine float
    for values, message in [
        ({"n": True}, "setting n of toy 'toy' must be a whole number, got True"),
        ({"n": "3.5"}, "must be a whole number, got '3.5'"),
        ({"mode": "c"}, "must be one of a, b, got 'c'"),
        ({"cap": "x"}, "must be a number or none, got 'x'"),
        ({"rat": 1}, "toy 'toy' has no setting 'rat'; its settings are: rate, n, on, mode, cap, tag (did you mean 'rate'?)"),
    ]:  # fmt: skip
        with pytest.raises(ConfigError) as info:
            coerce_settings("toy", _Toy, values, from_text=True)
        assert message in str(info.value)
