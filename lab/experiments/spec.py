"""A sweep file (TOML) and the graph of cells it plans.

::

    name = "mnist_tradeoff"
    seeds = [0, 1]                       # every trained model, once per seed

    [[model]]                            # a recipe to train ...
    name = "standard"
    recipe = "../mnist_smallcnn.toml"    # relative to this file (or to the working folder)
    set = { "train.epochs" = 2 }         # recipe overrides, as `lab train --set`
    vary = { "model.arch" = ["smallcnn", "lenet5"] }   # one model per value (product over keys)

    [[model]]
    name = "dae"
    recipe = "../mnist_dae.toml"
    classifier = "standard"              # a denoiser's classifier: another model of this sweep

    [[model]]
    name = "mine"
    run = "runs/my_model"                # ... or an existing run (evaluated and explained, not trained)

    [[evaluate]]                         # one `lab eval` per model and seed
    suite = "quick"                      # and/or attacks = ["pgd"]
    norm = "linf"
    eps = [0, 0.1, 0.2, 0.3]
    n = 500

    [[explain]]                          # one explanation-quality cell per model, seed and method
    methods = ["saliency", "gradcam"]
    n = 16
    attack = "pgd"                       # also the maps' similarity under this attack
    eps = 0.3

:mod:`lab.experiments.graph` plans the cells. Each cell's key is a digest of its kind, its
resolved settings, the keys of the cells it depends on, the content fingerprint of its data
and the lab's version (:func:`cell_key`); the same key is the same computation, and a store
never runs it twice.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib

import lab
from lab.core.epsilon import check_eps, parse_eps
from lab.core.errors import ConfigError
from lab.core.settings import did_you_mean
from lab.runs.evaluate import plan_eval
from lab.runs.explain import resolve_methods

KINDS = ("train", "run", "evaluate", "explain")

_TOP_KEYS = {"name", "description", "seeds", "data_dir", "model", "evaluate", "explain"}
_MODEL_KEYS = {"name", "recipe", "run", "set", "vary", "classifier"}
_EVAL_KEYS = {"suite", "attacks", "norm", "eps", "n", "offset", "batch_size", "checks", "probe_n", "precision"}
_EXPLAIN_KEYS = {"methods", "n", "offset", "attack", "eps", "norm", "quick", "steps"}


@dataclass(frozen=True)
class Cell:
    """One node of the sweep's graph.

    ``kind``: train | run | evaluate | explain; ``axes``: what the tables group by (model,
    seed, arch, defense, denoiser, eval, norm, method); ``settings``: everything that decides
    the result (JSON); ``deps``: keys of the cells it needs, finished first.
    """

    key: str
    kind: str
    label: str
    axes: dict[str, Any]
    settings: dict[str, Any]
    deps: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "kind": self.kind, "label": self.label, "axes": self.axes,
                "settings": self.settings, "deps": list(self.deps)}  # fmt: skip


@dataclass
class SweepSpec:
    """A parsed sweep file: its name, seeds, models and the evaluation / explanation entries."""

    name: str
    path: Path | None
    seeds: list[int]
    models: list[dict[str, Any]]
    evaluate: list[dict[str, Any]] = field(default_factory=list)
    explain: list[dict[str, Any]] = field(default_factory=list)
    description: str = ""
    data_dir: str = ""


def cell_key(kind: str, settings: Mapping[str, Any], deps: Sequence[str], data_fingerprint: str) -> str:
    """The digest (16 hex digits of sha256) that identifies a cell's computation."""
    blob = json.dumps({"kind": kind, "settings": settings, "deps": list(deps), "data": data_fingerprint,
                       "lab": lab.__version__}, sort_keys=True, default=str)  # fmt: skip
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _check_keys(table: Mapping[str, Any], allowed: set[str], where: str) -> None:
    for k in table:
        if k not in allowed:
            raise ConfigError(f"unknown key {k!r} in {where}{did_you_mean(k, sorted(allowed))}")


def _list(value: Any) -> list[Any]:
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def load_spec(path: str | os.PathLike[str]) -> SweepSpec:
    """Read and check a sweep file (ConfigError naming the bad key or value)."""
    p = Path(path)
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"sweep file {str(p)!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"sweep file {str(p)!r} is unreadable ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"sweep file {str(p)!r} is not valid TOML ({exc})") from None
    return spec_from_dict(raw, p)


def _resolve_file(text: str, base: Path | None, what: str) -> str:
    """A path from the sweep file: relative to the file's folder if it exists there, else as given."""
    cand = Path(text)
    if not cand.is_absolute() and base is not None and (base.parent / cand).exists():
        return str((base.parent / cand).resolve())
    if not cand.exists():
        raise ConfigError(f"{what} {text!r} does not exist")
    return str(cand.resolve())


def spec_from_dict(raw: Mapping[str, Any], path: Path | None = None) -> SweepSpec:
    """A :class:`SweepSpec` from the TOML's tables (``path``: where relative paths start)."""
    _check_keys(raw, _TOP_KEYS, "the sweep file")
    where = str(path) if path else "the sweep"
    name = str(raw.get("name") or (path.stem if path else "sweep"))
    seeds = _list(raw.get("seeds", [0]))
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        raise ConfigError(f"seeds in {where} must be a list of integers >= 0, got {raw.get('seeds')!r}")
    models_raw = raw.get("model") or []
    if not isinstance(models_raw, list) or not models_raw:
        raise ConfigError(f"{where} names no model: add a [[model]] table with a recipe or a run")
    models: list[dict[str, Any]] = []
    for i, m in enumerate(models_raw):
        models += _expand_model(m, i, path)
    names = [m["name"] for m in models]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"model names must differ in {where}; repeated: {', '.join(dupes)}")
    for m in models:
        if m.get("classifier") and m["classifier"] not in names:
            raise ConfigError(f"model {m['name']!r}: classifier {m['classifier']!r} is not a model of this sweep "
                              f"(models: {', '.join(names)})")  # fmt: skip
    evaluate = [_check_eval(e, i, where) for i, e in enumerate(raw.get("evaluate") or [])]
    explain = [_check_explain(e, i, where) for i, e in enumerate(raw.get("explain") or [])]
    if not evaluate and not explain and all(m["kind"] == "run" for m in models):
        raise ConfigError(f"{where} has nothing to do: add [[evaluate]] or [[explain]] tables, or models to train")
    return SweepSpec(name=name, path=path, seeds=sorted(set(seeds)), models=models, evaluate=evaluate,
                     explain=explain, description=str(raw.get("description", "")),
                     data_dir=str(raw.get("data_dir", "")))  # fmt: skip


def _expand_model(m: Any, i: int, path: Path | None) -> list[dict[str, Any]]:
    where = f"[[model]] #{i + 1}"
    if not isinstance(m, dict):
        raise ConfigError(f"{where} must be a table")
    _check_keys(m, _MODEL_KEYS, where)
    name = m.get("name")
    if not name or not isinstance(name, str):
        raise ConfigError(f"{where} needs a name")
    if ("recipe" in m) == ("run" in m):
        raise ConfigError(f"model {name!r} needs exactly one of recipe = RECIPE.toml (to train) or run = FOLDER")
    if "run" in m:
        if m.get("set") or m.get("vary") or m.get("classifier"):
            raise ConfigError(f"model {name!r} is an existing run: set, vary and classifier apply to recipes only")
        return [{"name": name, "kind": "run", "run": _resolve_file(str(m["run"]), path, f"model {name!r}: run")}]
    recipe = _resolve_file(str(m["recipe"]), path, f"model {name!r}: recipe")
    sets = m.get("set") or {}
    if not isinstance(sets, dict):
        raise ConfigError(f"model {name!r}: set must be a table of recipe keys, e.g. set = {{ \"train.epochs\" = 2 }}")
    vary = m.get("vary") or {}
    if not isinstance(vary, dict) or not all(isinstance(v, list) and v for v in vary.values()):
        raise ConfigError(f"model {name!r}: vary must map recipe keys to non-empty lists of values")
    out = []
    keys = list(vary)
    for combo in itertools.product(*(vary[k] for k in keys)) if keys else [()]:
        overrides = {**sets, **dict(zip(keys, combo))}
        label = name if not keys else name + "[" + ",".join(f"{k.rpartition('.')[2]}={v}" for k, v in
                                                           zip(keys, combo)) + "]"  # fmt: skip
        out.append({"name": label, "kind": "train", "recipe": recipe, "set": overrides,
                    "classifier": m.get("classifier")})  # fmt: skip
    return out


def override_text(key: str, value: Any) -> str:
    return f"{key}={json.dumps(value) if not isinstance(value, str) else value}"


def _check_eval(e: Any, i: int, where: str) -> dict[str, Any]:
    at = f"[[evaluate]] #{i + 1} of {where}"
    if not isinstance(e, dict):
        raise ConfigError(f"{at} must be a table")
    _check_keys(e, _EVAL_KEYS, at)
    norm = str(e.get("norm", "linf"))
    if norm not in ("linf", "l2"):
        raise ConfigError(f"{at}: norm must be linf or l2, got {norm!r}")
    eps_raw = e.get("eps")
    eps = None
    if eps_raw is not None:
        values = parse_eps(eps_raw) if isinstance(eps_raw, str) else [float(v) for v in _list(eps_raw)]
        eps = check_eps(values, norm)
    attacks = [str(a) for a in _list(e.get("attacks", []))]
    plan = plan_eval(e.get("suite"), attacks, eps, norm)  # unknown suite / attack / bad epsilon: now
    n, offset, batch, probe = (_int(e, k, d, at) for k, d in (("n", 1000), ("offset", 0), ("batch_size", 500),
                                                                ("probe_n", 200)))  # fmt: skip
    if n < 1 or offset < 0 or batch < 1 or probe < 1:
        raise ConfigError(f"{at}: n, batch_size and probe_n must be >= 1 and offset >= 0")
    return {"suite": plan.suite, "attacks": list(plan.attacks), "norm": norm,
            "eps": list(plan.eps) if plan.eps is not None else None, "n": n, "offset": offset, "batch_size": batch,
            "checks": bool(e.get("checks", True)), "probe_n": probe, "precision": e.get("precision")}  # fmt: skip


def _int(table: Mapping[str, Any], key: str, default: int, at: str) -> int:
    v = table.get(key, default)
    if not isinstance(v, int) or isinstance(v, bool):
        raise ConfigError(f"{at}: {key} must be a whole number, got {v!r}")
    return v


def _check_explain(e: Any, i: int, where: str) -> dict[str, Any]:
    at = f"[[explain]] #{i + 1} of {where}"
    if not isinstance(e, dict):
        raise ConfigError(f"{at} must be a table")
    _check_keys(e, _EXPLAIN_KEYS, at)
    methods = resolve_methods([str(m) for m in _list(e.get("methods", []))] or ["saliency"])
    norm = str(e.get("norm", "linf"))
    attack = e.get("attack")
    eps = e.get("eps")
    if attack is not None:
        plan_eval(None, [str(attack)], [float(eps)] if eps is not None else None, norm)
    elif eps is not None:
        raise ConfigError(f"{at}: eps needs an attack")
    n, offset, steps = (_int(e, k, d, at) for k, d in (("n", 16), ("offset", 0), ("steps", 20)))
    if n < 1 or offset < 0 or steps < 2:
        raise ConfigError(f"{at}: n must be >= 1, offset >= 0 and steps >= 2")
    return {"methods": methods, "n": n, "offset": offset, "attack": attack,
            "eps": float(eps) if eps is not None else (0.3 if attack else None), "norm": norm,
            "quick": bool(e.get("quick", True)), "steps": steps}  # fmt: skip
