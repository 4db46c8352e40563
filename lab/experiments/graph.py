"""The graph of a sweep's cells: what :func:`plan` makes of a :class:`lab.experiments.spec.SweepSpec`.

The cells: ``train`` (or ``run``) per model and seed, ``evaluate`` per model, seed and
``[[evaluate]]`` entry (every radius of an entry is one cell, because the gradient-masking
checks judge the radii together), ``explain`` per model, seed, entry and method; each
after the cells it needs (a denoiser after its classifier, an evaluation after its model).
Each key is :func:`lab.experiments.spec.cell_key` of the resolved settings: the full recipe
after overrides (without where its data lives or which device runs it), the evaluation's or
explanation's settings, the keys of the cells it needs, the data's fingerprint and the lab's version.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from lab.core.errors import LabError
from lab.core.io import file_sha256
from lab.data import load_dataset
from lab.experiments.spec import Cell, SweepSpec, cell_key, override_text
from lab.runs.evaluate import eval_name
from lab.training.checkpoint import load_model, resolve_model_path
from lab.training.config import load_config


def plan(spec: SweepSpec) -> list[Cell]:
    """Every cell of ``spec``, each after the cells it depends on (ConfigError for a bad recipe)."""
    fingerprints: dict[str, str] = {}

    def data_fp(dataset: str) -> str:
        if dataset not in fingerprints:
            fingerprints[dataset] = load_dataset(dataset, spec.data_dir or None).fingerprint
        return fingerprints[dataset]

    cells: list[Cell] = []
    by_model: dict[tuple[str, int | None], Cell] = {}
    # denoisers after their classifiers
    order = sorted(spec.models, key=lambda m: 1 if m.get("classifier") else 0)
    for m in order:
        seeds: list[int | None] = list(spec.seeds) if m["kind"] == "train" else [None]
        for seed in seeds:
            cell = _model_cell(m, seed, by_model, data_fp, spec)
            by_model[(m["name"], seed)] = cell
            cells.append(cell)
    for (_, _seed), mcell in list(by_model.items()):
        fp = mcell.settings["data_fingerprint"]
        for e in spec.evaluate:
            name = eval_name(e["suite"], e["attacks"], e["norm"])
            settings = {**e}
            axes = {**_model_axes(mcell), "eval": name, "norm": e["norm"]}
            deps = (mcell.key,)
            cells.append(Cell(cell_key("evaluate", settings, deps, fp), "evaluate",
                              f"eval {_model_label(mcell)} {name}", axes, settings, deps))  # fmt: skip
        for e in spec.explain:
            for method in e["methods"]:
                settings = {k: v for k, v in e.items() if k != "methods"} | {"method": method}
                axes = {**_model_axes(mcell), "method": method}
                deps = (mcell.key,)
                cells.append(Cell(cell_key("explain", settings, deps, fp), "explain",
                                  f"explain {_model_label(mcell)} {method}", axes, settings, deps))  # fmt: skip
    return cells


def _model_axes(cell: Cell) -> dict[str, Any]:
    return {k: cell.axes[k] for k in ("model", "seed", "arch", "dataset", "defense", "denoiser") if k in cell.axes}


def _model_label(cell: Cell) -> str:
    seed = cell.axes.get("seed")
    return cell.axes["model"] + (f" seed={seed}" if seed is not None else "")


def _model_cell(m: dict[str, Any], seed: int | None, by_model: Mapping[tuple[str, int | None], Cell], data_fp: Callable[[str], str],
                spec: SweepSpec) -> Cell:  # fmt: skip
    if m["kind"] == "run":
        path = resolve_model_path(m["run"])
        ckpt = load_model(path)  # a foreign or corrupt checkpoint: one sentence, now
        info = ckpt.info
        digest = file_sha256(path)
        settings = {"run": m["run"], "weights": digest, "data_fingerprint": info.dataset_fingerprint or ""}
        axes = {"model": m["name"], "seed": None, "arch": info.arch, "dataset": info.dataset,
                "defense": _run_defense(ckpt.record or {}), "denoiser": (info.extra.get("denoiser") or {}).get("name")}
        return Cell(cell_key("run", settings, (), settings["data_fingerprint"]), "run", f"run {m['name']}", axes,
                    settings)  # fmt: skip
    overrides = [override_text(k, v) for k, v in m["set"].items()] + [f"seed={seed}"]
    deps: tuple[str, ...] = ()
    if m.get("classifier"):
        dep = by_model.get((m["classifier"], seed)) or by_model.get((m["classifier"], None))
        if dep is None:  # pragma: no cover - plan() orders classifiers first
            raise LabError(f"model {m['name']!r}: classifier {m['classifier']!r} is not planned")
        deps = (dep.key,)
        overrides.append(f"denoiser.classifier=@{dep.key}")
    if spec.data_dir:
        overrides.append(f"data.data_dir={spec.data_dir}")
    cfg = load_config(m["recipe"], overrides)
    recipe = cfg.to_dict()
    recipe["name"] = m["name"]
    recipe["data"]["data_dir"] = ""  # where the files are is not what they are (the fingerprint is)
    recipe["runtime"].pop("device", None)  # where a cell runs is the engine's choice
    fp = data_fp(cfg.data.dataset)
    settings = {"recipe": recipe, "recipe_file": m["recipe"], "data_fingerprint": fp}
    axes = {"model": m["name"], "seed": seed, "arch": cfg.model.arch, "dataset": cfg.data.dataset,
            "defense": cfg.defense.get("name", "none"), "denoiser": cfg.denoiser.get("name") or None}
    key_settings = {k: v for k, v in settings.items() if k != "recipe_file"}
    return Cell(cell_key("train", key_settings, deps, fp), "train", f"train {m['name']} seed={seed}", axes, settings,
                deps)  # fmt: skip


def _run_defense(record: Mapping[str, Any]) -> str:
    recipe = record.get("recipe") or record.get("config") or {}
    defense = recipe.get("defense") if isinstance(recipe, dict) else None
    return str(defense.get("name", "none")) if isinstance(defense, dict) else "none"
