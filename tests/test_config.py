"""Recipes: every shipped recipe loads; overrides are typed; mistakes are one sentence."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.config import load_config, parse_override
from lab.errors import ConfigError

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
        ("train.epochs=abc", "train.epochs must be an integer, got 'abc'"),
        ("train.epochs=2.5", "train.epochs must be an integer"),
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
