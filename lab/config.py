"""Training recipes: TOML files in ``configs/`` resolved into typed dataclasses.

A recipe has the sections ``[data]``, ``[model]``, ``[train]``, ``[defense]``,
``[denoiser]`` and ``[runtime]`` plus top-level ``name`` and ``seed``. Unknown keys, wrong types and out-of-range values are
``ConfigError`` with one sentence naming the key. ``--set section.key=value`` overrides
take TOML literals (``train.lr=0.05``, ``runtime.compile=true``) or bare strings
(``data.dataset=fashion-mnist``).
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib

from lab.errors import ConfigError


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
    eval_batch_size: int = 1000


@dataclass
class DefenseConfig:
    """Adversarial training (``defenses/``): which recipe and its threat model.

    Each defense reads only some of these keys; setting one it does not read is an error.
    """

    name: str = "none"  # none (standard training) | pgd_at | fgsm_rs | trades
    norm: str = "linf"  # linf | l2: the threat model trained against
    eps: float = 0.0  # its radius in [0, 1] pixel units; > 0 for every defense but none
    steps: int = 10  # pgd_at, trades: steps of the inner maximization
    alpha: float = 0.0  # inner step size; 0: the method's default (2.5*eps/steps; fgsm_rs 1.25*eps)
    random_start: bool = True  # pgd_at: start uniformly in the ball (Madry et al.)
    beta: float = 6.0  # trades: weight of the KL(clean || adversarial) term
    eps_warmup_epochs: float = 0.0  # eps grows linearly from 0 over this many epochs (per step)
    # The catastrophic-overfitting guard: PGD accuracy of a fixed training batch after each epoch.
    guard: str = "auto"  # auto (rollback for fgsm_rs, off otherwise) | rollback | stop | off
    guard_drop: float = 0.2  # a collapse: PGD accuracy this far (a fraction) below the best epoch's
    guard_floor: float = 0.0  # ... or below this accuracy (0: no floor)
    guard_batch: int = 512  # training images it measures on
    guard_steps: int = 10  # PGD steps of that measurement


@dataclass
class DenoiserConfig:
    """A denoiser or input transform in front of a trained classifier (``defenses/``).

    With ``name`` set, ``lab train`` trains (or, for a parameter-free transform, just
    assembles) ``Denoised(classifier, denoiser)``: the classifier checkpoint stays frozen and
    only the denoiser learns, from adversarial examples of that classifier and noisy images.
    Each denoiser reads only some of these keys; setting one it does not read is an error.
    """

    name: str = ""  # "" (no denoiser) | dae | hgd | bit_depth | median | jpeg | random_resize
    classifier: str = ""  # the classifier's run folder (or model.safetensors); required with a name
    # Training examples (dae, hgd): a fraction of each batch is attacked, the rest gets noise.
    attack_eps: float = 0.3  # L-inf radius of the PGD examples made on the frozen classifier
    attack_steps: int = 10
    adv_frac: float = 0.5  # fraction of each batch replaced by adversarial examples
    noise: float = 0.1  # std of the Gaussian noise added to the other images (MagNet: 0.1)
    width: int = 32  # dae, hgd: channels of the first layer
    bits: int = 1  # bit_depth: bits per channel kept (Xu et al.: 1 on MNIST)
    kernel: int = 2  # median: window size (Xu et al.: 2x2 on MNIST, 3x3 on CIFAR-10)
    quality: int = 75  # jpeg: Pillow's JPEG quality (1-95)
    min_scale: float = 0.8  # random_resize: smallest resize factor (Xie et al. 2018)


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
    defense: DefenseConfig = field(default_factory=DefenseConfig)
    denoiser: DenoiserConfig = field(default_factory=DenoiserConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_CHOICES: dict[str, tuple[str, ...]] = {
    "data.augment": ("none", "crop", "crop_flip"),
    "train.optimizer": ("sgd", "adam", "adamw"),
    "train.schedule": ("onecycle", "cosine", "constant"),
    "runtime.precision": ("auto", "fp32", "bf16"),
    "defense.norm": ("linf", "l2"),
    "defense.guard": ("auto", "rollback", "stop", "off"),
}
_POSITIVE = (
    "train.epochs", "train.batch_size", "train.lr", "train.eval_batch_size", "defense.steps",
    "defense.guard_drop", "defense.guard_batch", "defense.guard_steps",
)  # fmt: skip
_NON_NEGATIVE = (
    "data.crop_padding", "data.train_subset", "data.test_subset", "train.momentum",
    "train.weight_decay", "train.label_smoothing", "train.grad_clip", "runtime.threads",
    "defense.eps", "defense.alpha", "defense.beta", "defense.eps_warmup_epochs", "defense.guard_floor",
)  # fmt: skip

_TYPE_WORDS = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _coerce(key: str, value: Any, typ: Any) -> Any:
    """Check ``value`` against the field type ``typ``; ints are accepted for floats."""
    if typ is bool:
        ok = isinstance(value, bool)
    elif typ is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif typ is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif typ is str:
        ok = isinstance(value, str)
    else:  # pragma: no cover - only the types above are used
        raise TypeError(typ)
    if not ok:
        raise ConfigError(f"{key} must be {_TYPE_WORDS[typ]}, got {value!r}")
    return value


def _apply(cfg: Any, prefix: str, values: dict[str, Any]) -> None:
    types_ = _field_types(type(cfg))
    for k, v in values.items():
        key = f"{prefix}{k}"
        if k not in types_:
            known = ", ".join(f"{prefix}{n}" for n in types_)
            raise ConfigError(f"unknown config key {key!r}; known keys: {known}")
        typ = types_[k]
        if dataclasses.is_dataclass(typ):
            if not isinstance(v, dict):
                raise ConfigError(f"{key} must be a table ([{key}] section), got {v!r}")
            _apply(getattr(cfg, k), f"{key}.", v)
        else:
            setattr(cfg, k, _coerce(key, v, typ))


def validate(cfg: RunConfig) -> RunConfig:
    """Range and choice checks that types alone do not catch."""
    flat = flatten(cfg.to_dict())
    for key, value in flat.items():
        if key.startswith("defense.") and isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{key} must be a finite number, got {value!r}")
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
    if cfg.train.label_smoothing >= 1.0:
        raise ConfigError(f"train.label_smoothing must be below 1, got {cfg.train.label_smoothing}")
    dev = cfg.runtime.device
    if not (dev in ("auto", "cpu", "cuda") or (dev.startswith("cuda:") and dev[5:].isdigit())):
        raise ConfigError(f"runtime.device must be auto, cpu, cuda or cuda:N, got {dev!r}")
    _validate_defense(cfg.defense)
    _validate_denoiser(cfg)
    return cfg


def _validate_denoiser(cfg: RunConfig) -> None:
    d = cfg.denoiser
    if not d.name:
        default = DenoiserConfig()
        changed = [k for k in DenoiserConfig.__dataclass_fields__ if getattr(d, k) != getattr(default, k)]
        if changed:
            raise ConfigError(f"denoiser.{changed[0]} has no effect without a denoiser (set denoiser.name)")
        return
    if cfg.defense.name != "none":
        raise ConfigError(
            f"a recipe trains either a defense ({cfg.defense.name}) or a denoiser ({d.name}), not both; "
            "put the denoiser in front of an adversarially trained classifier instead (denoiser.classifier)"
        )
    from defenses.denoisers import check_denoiser_config

    check_denoiser_config(d)


def _validate_defense(d: DefenseConfig) -> None:
    if d.norm == "linf" and d.eps > 1:
        raise ConfigError(
            f"defense.eps {d.eps:g} is above the data range: an L-inf radius is at most 1 (images are in [0, 1])"
        )
    if d.guard_drop > 1:
        raise ConfigError(f"defense.guard_drop is a fraction of accuracy in (0, 1], got {d.guard_drop!r}")
    if d.guard_floor >= 1:
        raise ConfigError(f"defense.guard_floor is an accuracy below 1, got {d.guard_floor!r}")
    # The defenses' registry decides which keys a defense reads; imported here, on use.
    from defenses import check_config

    check_config(d)


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


def _str_fields() -> set[str]:
    out: set[str] = set()

    def walk(cls: type, prefix: str) -> None:
        for name, typ in _field_types(cls).items():
            if dataclasses.is_dataclass(typ):
                walk(typ, f"{prefix}{name}.")  # type: ignore[arg-type]
            elif typ is str:
                out.add(f"{prefix}{name}")

    walk(RunConfig, "")
    return out


def from_dict(values: dict[str, Any], overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """A validated :class:`RunConfig` from nested ``values`` plus ``--set`` overrides."""
    cfg = RunConfig()
    _apply(cfg, "", values)
    strings = _str_fields()
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
