"""Training recipes: TOML files in ``configs/`` resolved into typed dataclasses.

A recipe has the sections ``[data]``, ``[model]``, ``[train]``, ``[defense]``,
``[denoiser]``, ``[detector]`` and ``[runtime]`` plus top-level ``name`` and ``seed``.
``[defense]``, ``[denoiser]`` and ``[detector]`` are free tables: ``name`` picks the method from
its registry (:data:`defenses.DEFENSES`, :data:`defenses.denoisers.DENOISERS`,
:data:`defenses.detectors.DETECTORS`), ``denoiser.classifier`` / ``detector.classifier`` name
the run folder of the classifier it goes in front of, and every other key
is a setting of the chosen method, checked by the method (its keyword-only ``__init__``
arguments, :mod:`lab.core.settings`). Unknown keys, wrong types and out-of-range values
are ``ConfigError`` with one sentence naming the key (``defense.eps``). ``--set
section.key=value`` overrides take TOML literals (``train.lr=0.05``,
``runtime.compile=true``) or bare strings (``data.dataset=fashion-mnist``).
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib

from lab.core.errors import ConfigError
from lab.core.settings import coerce_value, did_you_mean
from lab.training.recipes import TABLES, check_table, record, table_text_keys


@dataclass
class DataConfig:
    dataset: str = "mnist"
    data_dir: str = ""  # empty: LAB_DATA_DIR or the default sources
    augment: str = "none"  # none | crop | crop_flip (random crop with padding, horizontal flip)
    crop_padding: int = 4
    train_subset: int = 0  # 0: the whole training split; n: its first n images (smoke runs)
    test_subset: int = 0


@dataclass
class ModelConfig:
    arch: str = "smallcnn"


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 128
    optimizer: str = "sgd"  # sgd | adam | adamw
    lr: float = 0.05  # peak learning rate
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    schedule: str = "onecycle"  # onecycle | cosine | constant
    warmup_frac: float = 0.2  # onecycle: fraction of steps spent rising to the peak
    label_smoothing: float = 0.0
    grad_clip: float = 0.0  # 0: off
    ema_decay: float = 0.0  # 0: off; else the weights' exponential moving average is the saved model
    eval_batch_size: int = 1000


@dataclass
class RuntimeConfig:
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str = "auto"  # auto (bf16 where the hardware has it) | fp32 | bf16
    channels_last: bool = True
    compile: bool = False  # torch.compile the training step (CUDA; warm-up before timing)
    threads: int = 0  # 0: torch's default


@dataclass
class RunConfig:
    name: str = "run"
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    #: ``{"name": ..., **every setting of that defense}`` once validated
    defense: dict[str, Any] = field(default_factory=lambda: dict(TABLES["defense"]))
    #: ``{"name": ..., "classifier": ..., **every setting of that denoiser}`` once validated
    denoiser: dict[str, Any] = field(default_factory=lambda: dict(TABLES["denoiser"]))
    #: ``{"name": ..., "classifier": ..., "autoencoder": ..., "fpr": ..., **every setting of that detector}``
    detector: dict[str, Any] = field(default_factory=lambda: dict(TABLES["detector"]))
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)

    @property
    def defense_settings(self) -> dict[str, Any]:
        """The chosen defense's settings (the ``[defense]`` table without ``name``)."""
        return {k: v for k, v in self.defense.items() if k not in TABLES["defense"]}

    @property
    def denoiser_settings(self) -> dict[str, Any]:
        """The chosen denoiser's settings (the ``[denoiser]`` table without ``name`` and ``classifier``)."""
        return {k: v for k, v in self.denoiser.items() if k not in TABLES["denoiser"]}

    @property
    def detector_settings(self) -> dict[str, Any]:
        """The chosen detector's settings (the ``[detector]`` table without its recipe keys)."""
        return {k: v for k, v in self.detector.items() if k not in TABLES["detector"]}

    def to_dict(self) -> dict[str, Any]:
        """The recipe as checkpoints record it; each method table lists every setting of every
        registered method of its kind (the chosen one's values, the others' defaults), so two
        records compare key by key and an old record loads unchanged."""
        out = dataclasses.asdict(self)
        for section in TABLES:
            out[section] = record(section, getattr(self, section))
        return out


_CHOICES: dict[str, tuple[str, ...]] = {
    "data.augment": ("none", "crop", "crop_flip"),
    "train.optimizer": ("sgd", "adam", "adamw"),
    "train.schedule": ("onecycle", "cosine", "constant"),
    "runtime.precision": ("auto", "fp32", "bf16"),
}
_POSITIVE = ("train.epochs", "train.batch_size", "train.lr", "train.eval_batch_size")
_NON_NEGATIVE = (
    "data.crop_padding", "data.train_subset", "data.test_subset", "train.momentum",
    "train.weight_decay", "train.label_smoothing", "train.grad_clip", "runtime.threads",
)  # fmt: skip


def _apply(cfg: Any, prefix: str, values: dict[str, Any]) -> None:
    types_ = typing.get_type_hints(type(cfg))
    for k, v in values.items():
        key = f"{prefix}{k}"
        if k not in types_:
            known = ", ".join(f"{prefix}{n}" for n in types_)
            raise ConfigError(f"unknown config key {key!r}{did_you_mean(k, types_, prefix)}; known keys: {known}")
        typ = types_[k]
        if dataclasses.is_dataclass(typ) or typing.get_origin(typ) is dict:
            if not isinstance(v, dict):
                raise ConfigError(f"{key} must be a table ([{key}] section), got {v!r}")
            if dataclasses.is_dataclass(typ):
                _apply(getattr(cfg, k), f"{key}.", v)
            else:
                getattr(cfg, k).update(v)
        else:
            setattr(cfg, k, coerce_value(key, v, typ))


def validate(cfg: RunConfig) -> RunConfig:
    """Range and choice checks that types alone do not catch; the method tables checked by their methods."""
    flat = flatten(dataclasses.asdict(cfg))
    for key, choices in _CHOICES.items():
        if flat[key] not in choices:
            raise ConfigError(f"{key} must be one of {', '.join(choices)}, got {flat[key]!r}")
    for key in _POSITIVE:
        if not flat[key] > 0:
            raise ConfigError(f"{key} must be positive, got {flat[key]!r}")
    for key in _NON_NEGATIVE:
        if flat[key] < 0:
            raise ConfigError(f"{key} must not be negative, got {flat[key]!r}")
    if not 0.0 < cfg.train.warmup_frac < 1.0:
        raise ConfigError(f"train.warmup_frac must be between 0 and 1, got {cfg.train.warmup_frac}")
    if not 0.0 <= cfg.train.ema_decay < 1.0:
        raise ConfigError(f"train.ema_decay must be in [0, 1) (0: no weight averaging), got {cfg.train.ema_decay}")
    if cfg.train.label_smoothing >= 1.0:
        raise ConfigError(f"train.label_smoothing must be below 1, got {cfg.train.label_smoothing}")
    dev = cfg.runtime.device
    if not (dev in ("auto", "cpu", "cuda") or (dev.startswith("cuda:") and dev[5:].isdigit())):
        raise ConfigError(f"runtime.device must be auto, cpu, cuda or cuda:N, got {dev!r}")
    cfg.defense = check_table("defense", cfg.defense)
    den = cfg.denoiser.get("name", "")
    if den and cfg.defense["name"] != "none":
        raise ConfigError(
            f"a recipe trains either a defense ({cfg.defense['name']}) or a denoiser ({den}), not both; "
            "put the denoiser in front of an adversarially trained classifier instead (denoiser.classifier)"
        )
    cfg.denoiser = check_table("denoiser", cfg.denoiser)
    if cfg.denoiser["name"] and not cfg.denoiser["classifier"]:
        raise ConfigError(
            f"denoiser.classifier is required: the run folder of the trained classifier {cfg.denoiser['name']} goes "
            "in front of "
            "(for example runs/mnist_smallcnn)"
        )
    det = cfg.detector.get("name", "")
    if det and (cfg.defense["name"] != "none" or cfg.denoiser["name"]):
        other = cfg.denoiser["name"] or cfg.defense["name"]
        raise ConfigError(f"a detector recipe ({det}) fits a detector in front of a trained classifier and trains "
                          f"nothing else; train {other} in a recipe of its own and name its run in detector.classifier")  # fmt: skip
    cfg.detector = check_table("detector", cfg.detector)
    if cfg.detector["name"]:
        if not cfg.detector["classifier"]:
            raise ConfigError(f"detector.classifier is required: the run folder of the trained classifier "
                              f"{cfg.detector['name']} guards (for example runs/demo_smallcnn)")  # fmt: skip
        if not 0 < cfg.detector["fpr"] < 1:
            raise ConfigError(f"detector.fpr must be in (0, 1), got {cfg.detector['fpr']}")
        if cfg.detector["fit_n"] < 0 or cfg.detector["calib_n"] < 1:
            raise ConfigError(f"detector.fit_n must not be negative and detector.calib_n must be at least 1, got "
                              f"{cfg.detector['fit_n']} and {cfg.detector['calib_n']}")  # fmt: skip
    return cfg


# ---------------------------------------------------------------- reading recipes


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"train": {"lr": 1}} -> {"train.lr": 1}``."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def parse_override(text: str) -> tuple[str, Any]:
    """``"train.lr=0.05" -> ("train.lr", 0.05)``; the value is a TOML literal or a bare string."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set expects key=value (for example train.lr=0.05), got {text!r}")
    raw = raw.strip()
    try:
        value: Any = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key, value


def _nest(key: str, value: Any) -> dict[str, Any]:
    d: dict[str, Any] = {}
    cur = d
    parts = key.split(".")
    for p in parts[:-1]:
        cur = cur.setdefault(p, {})
    cur[parts[-1]] = value
    return d


def _text_keys() -> set[str]:
    """The keys whose ``--set`` value is the raw text: string fields, recipe keys, text settings."""
    out: set[str] = set()

    def walk(cls: type, prefix: str) -> None:
        for name, typ in typing.get_type_hints(cls).items():
            if dataclasses.is_dataclass(typ):
                walk(typ, f"{prefix}{name}.")  # type: ignore[arg-type]
            elif typ is str:
                out.add(f"{prefix}{name}")

    walk(RunConfig, "")
    return out | table_text_keys()


def from_dict(values: dict[str, Any], overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """A validated :class:`RunConfig` from nested ``values`` plus ``--set`` overrides."""
    cfg = RunConfig()
    _apply(cfg, "", values)
    strings = _text_keys()
    for text in overrides:
        key, value = parse_override(text)
        if key in strings and not isinstance(value, str):
            value = text.partition("=")[2].strip()  # data.dataset=10 means the string "10"
        _apply(cfg, "", _nest(key, value))
    return validate(cfg)


def load_config(path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """Read a TOML recipe (or the defaults when ``path`` is None) and apply overrides."""
    values: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file {str(p)!r} does not exist")
        try:
            values = tomllib.loads(p.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {str(p)!r} is not valid TOML: {exc}") from None
        except OSError as exc:
            raise ConfigError(f"config file {str(p)!r} cannot be read: {exc.strerror}") from None
        values.setdefault("name", p.stem)
    return from_dict(values, overrides)
