"""The methods a recipe's ``[defense]``, ``[denoiser]`` and ``[detector]`` tables name, and the
classifier a denoiser or detector recipe goes in front of.

The tables are free: ``name`` picks the method from its registry
(:data:`defenses.DEFENSES`, :data:`defenses.denoisers.DENOISERS`,
:data:`defenses.detectors.DETECTORS`), ``denoiser.classifier`` and ``detector.classifier`` name
the classifier's run folder (:data:`TABLES`: a detector recipe also names MagNet's
``autoencoder`` run, the false-positive rate ``fpr`` its threshold is set for, and the images
it is fitted and calibrated on), and every other key is a setting of the
chosen method: a keyword-only argument of its ``__init__``, converted by
:func:`lab.core.settings.coerce_settings` and checked by the method itself
(:func:`check_table`). A checkpoint records a table with every setting of every method of
its kind (:func:`record`), so two records compare key by key; a key of another method is
therefore accepted at its default. :func:`load_classifier` loads the classifier a denoiser
recipe names and checks it against the recipe's data.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from defenses import DEFENSES
from defenses.denoisers import DENOISERS, Denoised
from defenses.detectors import DETECTORS
from defenses.detectors.saved import GuardedModel
from lab.core.errors import ConfigError, LabError
from lab.core.io import file_sha256
from lab.core.registry import Registry
from lab.core.settings import (
    SettingError,
    coerce_settings,
    coerce_value,
    did_you_mean,
    setting_defaults,
    setting_names,
    settings_of,
    takes_text,
)
from lab.models.base import LabModel, ModelInfo
from lab.training.checkpoint import load_model

#: the recipe's own keys of each method table, with their defaults; every other key is a setting of the method.
#: ``defense.name = "none"`` is standard training; ``denoiser.name = ""`` means no denoiser, and
#: ``detector.name = ""`` no detector (a detector recipe fits ``fit_n`` training images and sets
#: its threshold for ``fpr`` on the last ``calib_n`` test images, as ``lab detect`` does).
TABLES: dict[str, dict[str, Any]] = {
    "defense": {"name": "none"},
    "denoiser": {"name": "", "classifier": ""},
    "detector": {"name": "", "classifier": "", "autoencoder": "", "fpr": 0.05, "fit_n": 10_000, "calib_n": 1000},
}
_REGISTRIES: dict[str, Registry[Any]] = {"defense": DEFENSES, "denoiser": DENOISERS, "detector": DETECTORS}


def _registry(section: str) -> Registry[Any]:
    return _REGISTRIES[section]


def _record_defaults(section: str) -> dict[str, Any]:
    """Every setting of every registered method of ``section``, with its default (the first method's, by name)."""
    out: dict[str, Any] = {}
    for _, cls in _registry(section).items():
        for key, value in setting_defaults(cls).items():
            out.setdefault(key, value)
    return out


def record(section: str, table: Mapping[str, Any]) -> dict[str, Any]:
    """``table`` as a checkpoint records it: the recipe keys, then every setting of every
    registered method of ``section`` (the chosen method's values, the others' defaults)."""
    out = {k: table.get(k, v) for k, v in TABLES[section].items()}
    out.update((k, table.get(k, v)) for k, v in _record_defaults(section).items())
    out.update((k, v) for k, v in table.items() if k not in out)  # settings without a default
    return out


def _no_effect(section: str, key: str, name: str, users: list[str]) -> ConfigError:
    return ConfigError(f"{section}.{key} has no effect without a {section} ({section}.name is {name!r}); "
                       f"set {section}.name to one of {', '.join(users)}")  # fmt: skip


def check_table(section: str, table: Mapping[str, Any]) -> dict[str, Any]:
    """A ``[defense]`` or ``[denoiser]`` table checked by the method it names: its recipe keys
    (:data:`TABLES`) and every setting of that method (given, converted, or its default).

    A key of another method is accepted at that method's default (what :func:`record`
    writes for it) and refused otherwise, saying which methods use it. ConfigError, one
    sentence naming the key as ``section.key``.
    """
    recipe = {k: coerce_value(f"{section}.{k}", table.get(k, v), type(v)) for k, v in TABLES[section].items()}
    name = recipe["name"]
    try:
        cls = _registry(section).get(name) if name else None
    except LabError as exc:
        raise ConfigError(f"{section}.name: {exc}") from None
    own = setting_names(cls) if cls is not None else []
    defaults = _record_defaults(section)
    given: dict[str, Any] = {}
    for key, value in table.items():
        if key in TABLES[section]:  # a recipe key: it matters only with a method
            if cls is None and value != TABLES[section][key]:
                raise _no_effect(section, key, name, _registry(section).names())
        elif key in own or key not in defaults:
            given[key] = value  # a setting of the method, or an unknown key (named below)
        elif value != defaults[key]:
            users = [n for n, c in _registry(section).items() if key in setting_names(c)]
            if not own:
                raise _no_effect(section, key, name, users)
            raise ConfigError(f"{section}.{key} is a setting of {', '.join(users)}; {name} does not use it")
    if cls is None:
        for key in given:
            raise ConfigError(f"unknown config key {section + '.' + key!r}{did_you_mean(key, defaults, section + '.')}; "
                              f"no {section} has that setting")  # fmt: skip
        return recipe
    settings = coerce_settings(section, cls, given, prefix=f"{section}.")
    missing = [s.name for s in settings_of(cls) if s.required and s.name not in settings]
    if missing:
        raise ConfigError(f"{section}.{missing[0]} is required for {section} {name!r}")
    try:
        cls.check(**settings)
    except SettingError as exc:
        raise ConfigError(f"{section}.{exc.key} {exc.detail}") from None
    return {**recipe, **{s.name: settings.get(s.name, s.default) for s in settings_of(cls)}}


def table_text_keys() -> set[str]:
    """``section.key`` for the recipe keys and every text setting (``defense.guard``): a
    ``--set`` value for one of them is the raw text."""
    out: set[str] = set()
    for section, keys in TABLES.items():
        out.update(f"{section}.{k}" for k, v in keys.items() if isinstance(v, str))
        for _, cls in _registry(section).items():
            out.update(f"{section}.{s.name}" for s in settings_of(cls) if takes_text(s.hint))
    return out


# ---------------------------------------------------------------- the classifier of a denoiser recipe


def load_classifier(path: str | os.PathLike[str], info: ModelInfo | None = None) -> tuple[LabModel, dict[str, Any]]:
    """The classifier checkpoint a denoiser recipe names, checked against the recipe's data.

    ``info``: the data's metadata (dataset, input shape, fingerprint) the run trains on;
    LabError when the classifier was trained on other data or takes another input shape.
    Returns the model and its record (path, weights digest, test accuracy, defense).
    """
    if not str(path):
        raise ConfigError("training a denoiser needs a classifier: set denoiser.classifier to its run folder")
    ck = load_model(path)
    ci = ck.model.info
    if isinstance(ck.model, (Denoised, GuardedModel)):
        kind = "a denoised model" if isinstance(ck.model, Denoised) else "a detector's run"
        raise LabError(f"{str(path)!r} is {kind}; name the plain classifier's run folder")
    if info is not None:
        if tuple(ci.input_shape) != tuple(info.input_shape):
            raise LabError(
                f"the classifier {str(path)!r} takes {'x'.join(map(str, ci.input_shape))} images but {info.dataset} has "
                f"{'x'.join(map(str, info.input_shape))}: a denoiser must see the classifier's input shape"
            )
        if ci.dataset != info.dataset or (ci.dataset_fingerprint and info.dataset_fingerprint
                                          and ci.dataset_fingerprint != info.dataset_fingerprint):  # fmt: skip
            raise LabError(f"the classifier {str(path)!r} was trained on {ci.dataset}, not on this recipe's {info.dataset}")
    record = {"path": str(Path(path)), "weights_sha256": file_sha256(ck.path),
              "test_acc": ck.metrics.get("test_acc"), "defense": ck.record.get("defense")}  # fmt: skip
    return ck.model, record
