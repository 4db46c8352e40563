"""A method's settings are its keyword-only ``__init__`` arguments; this module reads them and
checks values against them, once, for every caller: TOML recipes (``[defense]``,
``[denoiser]``), the CLI's ``key=value`` text (``lab attack --param``, ``lab train --set``)
and the dashboard's widgets.

* :func:`settings_of` lists a class's settings (name, type hint, default). An ``__init__``
  that takes ``**kwargs`` hands them to its base class, whose keyword-only parameters are
  settings too and come first (as dataclass fields do): a recipe family declares what it
  shares once. Ordinary (positional-or-keyword) parameters are not settings: they are what
  the caller supplies at run time (a denoiser's input shape, a defense's autocast dtype).
* :func:`coerce_settings` checks names (an unknown one is one sentence naming the known
  ones, with a did-you-mean) and types (ints are fine for floats, bools are not ints,
  ``Literal`` choices, ``Optional``), converting text (``"0.3"``, ``"8/255"``, ``"true"``,
  ``"none"``) when asked to.
* Ranges belong to the method: its ``__init__`` checks its own values with the helpers
  below (:func:`positive`, :func:`between`, :func:`whole`, ...), which raise a
  :class:`SettingError` naming the setting, so a recipe loader can say ``defense.eps``
  where the method says ``eps``.

Messages never name a CLI flag: the dashboard shows them too.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import math
import types
import typing
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Union

from lab.core.epsilon import parse_number
from lab.core.errors import ConfigError, LabError

_EMPTY = inspect.Parameter.empty
_TRUE, _FALSE, _NONE = ("true", "yes", "on"), ("false", "no", "off"), ("none", "null")


class SettingError(ConfigError):
    """A setting's value is wrong: ``key`` names the setting, ``detail`` says how (one sentence together)."""

    def __init__(self, key: str, detail: str) -> None:
        super().__init__(f"{key} {detail}")
        self.key = key
        self.detail = detail


@dataclass(frozen=True)
class Setting:
    """One keyword-only ``__init__`` argument: its name, resolved type hint and default."""

    name: str
    hint: Any  # Any when the parameter is unannotated or its annotation cannot be resolved
    default: Any  # inspect.Parameter.empty when the setting is required

    @property
    def required(self) -> bool:
        return self.default is _EMPTY


# ---------------------------------------------------------------- reading a class


def _init_chain(cls: type) -> list[Any]:
    """The ``__init__`` functions that define ``cls``'s settings, the class's own first."""
    chain = []
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None or klass is object:
            continue
        chain.append(init)
        if not any(p.kind is p.VAR_KEYWORD for p in inspect.signature(init).parameters.values()):
            break
    return chain


@functools.cache
def settings_of(cls: type) -> tuple[Setting, ...]:
    """``cls``'s settings in order: its base classes' (through ``**kwargs``) first, then its own."""
    out: dict[str, Setting] = {}
    for init in reversed(_init_chain(cls)):
        try:
            hints = typing.get_type_hints(init)
        except Exception:  # noqa: BLE001 - an annotation that cannot be resolved: its values are taken as given
            hints = {}
        for p in inspect.signature(init).parameters.values():
            if p.kind is p.KEYWORD_ONLY:
                out[p.name] = Setting(p.name, hints.get(p.name, Any), p.default)
    return tuple(out.values())


def setting_names(cls: type, *, exclude: Collection[str] = ()) -> list[str]:
    """The names of ``cls``'s settings (:func:`settings_of`), without ``exclude``."""
    return [s.name for s in settings_of(cls) if s.name not in exclude]


def setting_defaults(cls: type) -> dict[str, Any]:
    """``{name: default}`` for the settings of ``cls`` that have a default."""
    return {s.name: s.default for s in settings_of(cls) if not s.required}


def did_you_mean(word: str, options: Iterable[str], prefix: str = "") -> str:
    """`` (did you mean 'defense.eps'?)`` for the closest of ``options`` (named with ``prefix``), or ``""``."""
    close = difflib.get_close_matches(str(word), list(options), n=1)
    return f" (did you mean {prefix + close[0]!r}?)" if close else ""


# ---------------------------------------------------------------- checking values


def _options(hint: Any) -> tuple[Any, ...]:
    """The alternatives of ``hint``: ``float | None`` -> ``(float, NoneType)``."""
    if typing.get_origin(hint) in (Union, types.UnionType):
        return typing.get_args(hint)
    return (hint,)


def _is_literal(option: Any) -> bool:
    return typing.get_origin(option) is Literal


def takes_text(hint: Any) -> bool:
    """Whether a setting of type ``hint`` is text (``str``, or a ``Literal`` of strings): a
    ``key=value`` override for it means the raw text (``name=10`` is the name "10")."""
    options = _options(hint)
    return all(o is str or (_is_literal(o) and all(isinstance(c, str) for c in typing.get_args(o))) for o in options)


def _words(options: tuple[Any, ...]) -> str:
    names = {bool: "true or false", int: "a whole number", float: "a number", str: "text", type(None): "none"}
    parts = []
    for o in options:
        if _is_literal(o):
            parts.append("one of " + ", ".join(str(c) for c in typing.get_args(o)))
        else:
            parts.append(names.get(o, getattr(o, "__name__", str(o))))
    return " or ".join(parts)


def _checkable(option: Any) -> bool:
    return option in (bool, int, float, str, type(None)) or _is_literal(option)


def _check(value: Any, options: tuple[Any, ...]) -> tuple[bool, Any]:
    """``(ok, value)``: ``value`` as one of ``options`` (an int becomes a float where one is wanted)."""
    for o in options:
        if _is_literal(o):
            if any(value == c and type(value) is type(c) for c in typing.get_args(o)):
                return True, value
        elif o is type(None) and value is None:
            return True, None
        elif o is bool and isinstance(value, bool):
            return True, value
        elif o is str and isinstance(value, str):
            return True, value
        elif o is int and isinstance(value, int) and not isinstance(value, bool):
            return True, value
    if float in options and isinstance(value, (int, float)) and not isinstance(value, bool):
        return True, float(value)
    if not all(_checkable(o) for o in options):
        return True, value  # a type this module cannot check (a sequence, a dtype): the method checks it
    return False, value


def _from_text(text: str, options: tuple[Any, ...]) -> tuple[bool, Any]:
    """``(ok, value)`` for a value typed as text (``"0.3"``, ``"8/255"``, ``"true"``, ``"none"``)."""
    low = text.lower()
    if type(None) in options and low in (*_NONE, ""):
        return True, None
    for o in options:
        if _is_literal(o):
            for c in typing.get_args(o):
                if text == str(c) or (isinstance(c, bool) and low in (_TRUE if c else _FALSE)):
                    return True, c
    if bool in options and (low in _TRUE or low in _FALSE):
        return True, low in _TRUE
    if int in options:
        try:
            return True, int(text)
        except ValueError:
            pass
    if float in options:
        try:
            return True, parse_number(text, what="setting")
        except LabError:
            pass
    if str in options:
        return True, text
    if not all(_checkable(o) for o in options):  # a type without a text form: the value the text spells
        return _from_text(text, (type(None), bool, int, float, str))
    return False, text


def coerce_value(label: str, value: Any, hint: Any, *, from_text: bool = False) -> Any:
    """``value`` checked against the type ``hint`` (and converted from text with ``from_text``).

    ``label`` names the setting in the message: ``defense.steps must be a whole number, got 2.5``.
    """
    options = _options(hint)
    if from_text and isinstance(value, str) and str not in options:
        ok, out = _from_text(value.strip(), options)
    else:
        ok, out = _check(value, options)
    if not ok:
        raise ConfigError(f"{label} must be {_words(options)}, got {value!r}")
    return out


def coerce_settings(kind: str, cls: type, values: Mapping[str, Any], *, from_text: bool = False,
                    prefix: str = "", exclude: Collection[str] = ()) -> dict[str, Any]:  # fmt: skip
    """``values`` checked against the settings of ``cls`` (a ``kind``: attack, defense,
    denoiser, ...) and converted to the types its ``__init__`` declares.

    ``from_text``: values that are strings were typed by a person (the CLI, the dashboard)
    and are parsed. ``prefix``: how a recipe names the keys (``"defense."``: messages say
    ``defense.eps``). ``exclude``: arguments given separately (an attack's ``eps`` and
    ``norm``), refused as settings. Range checks are left to ``cls.__init__``. ConfigError,
    one sentence, for an unknown key or a value of the wrong type.
    """
    known = {s.name: s for s in settings_of(cls) if s.name not in exclude}
    name = getattr(cls, "name", "") or cls.__name__
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            listed = ", ".join(known) or "none"
            if prefix:
                raise ConfigError(f"unknown config key {prefix + key!r}{did_you_mean(key, known, prefix)}; "
                                  f"the settings of {kind} {name!r} are: {listed}")  # fmt: skip
            raise ConfigError(f"{kind} {name!r} has no setting {key!r}; its settings are: {listed}"
                              f"{did_you_mean(key, known)}")  # fmt: skip
        label = f"{prefix}{key}" if prefix else f"setting {key} of {kind} {name!r}"
        out[key] = coerce_value(label, value, known[key].hint, from_text=from_text)
    return out


# ---------------------------------------------------------------- range checks for __init__


def _real(key: str, value: Any) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise SettingError(key, f"must be a number, got {value!r}")
    if not math.isfinite(value):
        raise SettingError(key, f"must be a finite number, got {value!r}")
    return value


def positive(key: str, value: Any) -> Any:
    """``value`` if it is a finite number > 0 (its type kept): ``steps must be positive, got 0``."""
    if not _real(key, value) > 0:
        raise SettingError(key, f"must be positive, got {value!r}")
    return value


def non_negative(key: str, value: Any) -> Any:
    """``value`` if it is a finite number >= 0: ``beta must not be negative, got -1.0``."""
    if _real(key, value) < 0:
        raise SettingError(key, f"must not be negative, got {value!r}")
    return value


def between(key: str, value: Any, low: float, high: float) -> Any:
    """``value`` if ``low <= value <= high``: ``bits must be between 1 and 8, got 12``."""
    if not low <= _real(key, value) <= high:
        raise SettingError(key, f"must be between {low:g} and {high:g}, got {value!r}")
    return value


def one_of(key: str, value: Any, allowed: Iterable[Any]) -> Any:
    """``value`` if it is one of ``allowed``: ``norm must be one of linf, l2, got 'l1'``."""
    options = list(allowed)
    if value not in options:
        raise SettingError(key, f"must be one of {', '.join(map(str, options))}, got {value!r}")
    return value


def whole(name: str, value: Any, minimum: int = 1) -> int:
    """``value`` as an int >= ``minimum`` (bools and floats refused)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise SettingError(name, f"must be a whole number >= {minimum}, got {value!r}")
    return int(value)


def number(name: str, value: Any, *, minimum: float = 0.0, strict: bool = True) -> float:
    """``value`` as a finite float > ``minimum`` (or >= with ``strict=False``)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not (value > minimum if strict else value >= minimum):
        raise SettingError(name, f"must be a number {'>' if strict else '>='} {minimum:g}, got {value!r}")
    return float(value)


def choice(name: str, value: Any, allowed: Iterable[str]) -> str:
    """``value`` if it is one of ``allowed``: ``unknown APGD loss 'margin'; choose one of: ce, dlr``."""
    options = list(allowed)
    if value not in options:
        raise LabError(f"unknown {name} {value!r}; choose one of: {', '.join(options)}")
    return str(value)
