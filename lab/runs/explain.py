"""Explanations of a few images by one or several models, clean and (optionally) attacked.

``run_explain([checkpoint], ["integrated_gradients", "gradcam"], images, labels)`` returns an
:class:`ExplainRun`: per model its predictions and, per method, the maps [N, H, W] with
their statistics; with ``attack="pgd", eps=0.3`` also the adversarial images (one set per
model: each model is attacked on its own), their predictions and maps, and the cosine
similarity of each clean map with its adversarial map. ``lab explain`` renders it
(:func:`lab.present.explanations.write_explain_run`); the dashboard calls the same function.

Targets: ``target`` None explains each image's predicted class (clean maps: the clean
prediction, adversarial maps: the adversarial prediction); a class index explains that
class everywhere. Facts about a method (whether its maps are signed, its short heading, its
aliases) are its explainer class's attributes (:class:`explain.base.Explainer`).
"""

from __future__ import annotations

import datetime as _dt
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from explain import EXPLAINERS, Explainer
from lab.core.epsilon import default_eps
from lab.core.errors import LabError
from lab.data.pixels import to_float
from lab.evaluation.report import jsonable
from lab.models.base import model_of
from lab.models.predict import classify
from lab.runs.attack import attack_setting_names, resolve_target, run_attack

EXPLAIN_RUN_FORMAT = "lab-explain-run"
EXPLAIN_RUN_VERSION = 1
#: the share of pixels whose attribution mass ``top_mass`` reports
TOP_FRACTION = 0.1


def method_aliases() -> dict[str, str]:
    """Every registered method's other names (its class's ``aliases``): ``{"ig": "integrated_gradients", ...}``."""
    return {alias: name for name, cls in EXPLAINERS.items() for alias in cls.aliases}


def resolve_methods(names: str | Sequence[str]) -> list[str]:
    """``"ig,gradcam"`` or ``["ig", "gradcam"]`` -> registered names, aliases resolved, order kept.

    LabError (one sentence listing the valid names and aliases) for an unknown name.
    """
    aliases = method_aliases()
    items = names.split(",") if isinstance(names, str) else list(names)
    out: list[str] = []
    for raw in items:
        name = str(raw).strip().lower().replace("-", "_")
        if not name:
            continue
        name = aliases.get(name, name)
        if name not in EXPLAINERS:
            shown = ", ".join(f"{a}={m}" for a, m in aliases.items())
            raise LabError(f"unknown explanation method {str(raw).strip()!r}; choose from: "
                           f"{', '.join(EXPLAINERS.names())} (aliases: {shown})")  # fmt: skip
        if name not in out:
            out.append(name)
    if not out:
        raise LabError("give at least one explanation method, e.g. ig,gradcam")
    return out


def map_stats(amap: np.ndarray, top_fraction: float = TOP_FRACTION) -> dict[str, float]:
    """min, max, sum, sum of |values|, and ``top_mass``: the share of the |values| mass held by
    the ``top_fraction`` largest-|value| pixels (1.0 = all mass there, ~top_fraction = spread out)."""
    a = np.asarray(amap, dtype=np.float64).ravel()
    mag = np.abs(a)
    total = float(mag.sum())
    k = max(1, int(round(top_fraction * a.size)))
    top = float(np.sort(mag)[-k:].sum())
    return {"min": float(a.min()), "max": float(a.max()), "sum": float(a.sum()), "abs_sum": total,
            "top_mass": top / total if total > 0 else 0.0}  # fmt: skip


def cosine(a: np.ndarray, b: np.ndarray) -> float | None:
    """Cosine similarity of two maps (None when either is all zeros)."""
    u, v = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    nu, nv = float(np.linalg.norm(u)), float(np.linalg.norm(v))
    return float(u @ v / (nu * nv)) if nu > 0 and nv > 0 else None


@dataclass
class ModelExplanations:
    """One model's predictions and maps (numpy) on the run's images."""

    name: str  # how the grid and the JSON call this model
    meta: dict[str, Any]
    class_names: list[str]
    predictions: np.ndarray  # int64 [N]
    confidences: np.ndarray  # float [N]
    targets: dict[str, np.ndarray]  # method -> int64 [N]
    maps: dict[str, np.ndarray]  # method -> float32 [N, H, W]
    adversarial: np.ndarray | None = field(default=None, repr=False)  # float32 [N, C, H, W]
    adv_predictions: np.ndarray | None = None
    adv_confidences: np.ndarray | None = None
    adv_targets: dict[str, np.ndarray] = field(default_factory=dict)
    adv_maps: dict[str, np.ndarray] = field(default_factory=dict)
    seconds: float = 0.0

    def cosines(self, method: str) -> list[float | None]:
        """Per image, the cosine of ``method``'s clean map with its adversarial map (None: an all-zero
        map); empty without an attack."""
        if method not in self.adv_maps:
            return []
        return [cosine(a, b) for a, b in zip(self.maps[method], self.adv_maps[method])]


@dataclass
class ExplainRun:
    """What :func:`run_explain` returns; ``to_dict`` is the JSON (without pixels and maps)."""

    methods: list[str]
    settings: dict[str, dict[str, Any]]  # method -> the explainer's config()
    signed: dict[str, bool]  # method -> whether its maps are signed
    images: np.ndarray = field(repr=False)  # float32 [N, C, H, W] in [0, 1]
    names: list[str]
    labels: np.ndarray | None  # int64 [N], or None for user files
    models: list[ModelExplanations]
    attack: dict[str, Any] | None = None  # the attack's config() (eps, norm included)
    source: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    #: method -> its column heading in a grid (the explainer class's :meth:`~explain.base.Explainer.heading`)
    headings: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        models = []
        for m in self.models:
            rows = []
            for i, name in enumerate(self.names):
                row: dict[str, Any] = {
                    "index": i, "name": name,
                    "label": int(self.labels[i]) if self.labels is not None else None,
                    "prediction": int(m.predictions[i]), "prediction_name": m.class_names[int(m.predictions[i])],
                    "confidence": float(m.confidences[i]),
                }  # fmt: skip
                if m.adv_predictions is not None:
                    row["adv_prediction"] = int(m.adv_predictions[i])
                    row["adv_prediction_name"] = m.class_names[int(m.adv_predictions[i])]
                    row["adv_confidence"] = float(m.adv_confidences[i])  # type: ignore[index]
                    row["prediction_changed"] = bool(m.adv_predictions[i] != m.predictions[i])
                methods: dict[str, Any] = {}
                for method in self.methods:
                    entry: dict[str, Any] = {"target": int(m.targets[method][i]), "stats": map_stats(m.maps[method][i])}
                    if method in m.adv_maps:
                        entry["adv_target"] = int(m.adv_targets[method][i])
                        entry["adv_stats"] = map_stats(m.adv_maps[method][i])
                        entry["cosine_clean_adv"] = cosine(m.maps[method][i], m.adv_maps[method][i])
                    methods[method] = entry
                row["methods"] = methods
                rows.append(row)
            models.append({"name": m.name, "model": m.meta, "seconds": m.seconds, "images": rows})
        return jsonable({
            "format": EXPLAIN_RUN_FORMAT, "format_version": EXPLAIN_RUN_VERSION,
            "methods": self.methods, "settings": self.settings, "signed": self.signed,
            "attack": self.attack, "n": len(self.names), "images": self.names, "source": self.source,
            "stats_note": (f"stats per map: min, max, sum, abs_sum (sum of |values|) and top_mass (share of "
                           f"abs_sum in the top {TOP_FRACTION:.0%} of pixels by |value|)"),
            "target_note": "target: the class explained (the prediction unless --target); adv_target likewise "
                           "on the adversarial image",
            "models": models, "meta": self.meta,
        })  # fmt: skip


def _predict(model: torch.nn.Module, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(classes int64 [N], confidences float32 [N]) as numpy, from :func:`lab.models.predict.classify`."""
    k, c = classify(model, x)
    return k.cpu().numpy().astype(np.int64), c.cpu().numpy()


def _explain_all(model: torch.nn.Module, explainers: Mapping[str, Explainer], x: torch.Tensor, preds: np.ndarray,
                 target: int | None, batch_size: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:  # fmt: skip
    """(method -> maps float32 [N, H, W], method -> targets int64 [N]): ``target`` or the predictions."""
    n = x.shape[0]
    tgt = np.full(n, target, dtype=np.int64) if target is not None else np.asarray(preds, dtype=np.int64)
    t = torch.as_tensor(tgt, device=x.device)
    maps: dict[str, np.ndarray] = {}
    targets: dict[str, np.ndarray] = {}
    for name, explainer in explainers.items():
        parts = [explainer(model, x[i : i + batch_size], t[i : i + batch_size]) for i in range(0, n, batch_size)]
        maps[name] = torch.cat(parts)[:, 0].cpu().numpy().astype(np.float32)
        targets[name] = tgt.copy()
    return maps, targets


def run_explain(
    checkpoints: Sequence[Any],
    methods: str | Sequence[str],
    images: torch.Tensor | np.ndarray,
    labels: np.ndarray | Sequence[int] | None = None,
    *,
    attack: str | None = None,
    eps: float | None = None,
    norm: str = "linf",
    attack_settings: Mapping[str, Any] | None = None,
    target: int | str | None = None,
    method_settings: Mapping[str, Mapping[str, Any]] | None = None,
    quick: bool = False,
    batch_size: int = 32,
    names: Sequence[str] | None = None,
    model_names: Sequence[str] | None = None,
    source: Mapping[str, Any] | None = None,
) -> ExplainRun:
    """Explain ``images`` (uint8 or float [N, C, H, W]) with every method for every model.

    ``checkpoints``: :class:`lab.training.checkpoint.Checkpoint` objects or LabModels taking the same
    input shape. ``labels``: [N] (recorded; the attack's labels), or None (the attack then
    uses each model's clean predictions). ``attack``/``eps``/``norm``/``attack_settings``:
    attack each model on the images (:func:`lab.runs.attack.run_attack`) and explain the
    adversarial images too. ``target``: None (each image's predicted class) or a class
    index/name. ``method_settings``: per method keyword settings; ``quick``: start from each
    method's cheap ``quick_settings`` (previews and tests).
    """
    if not checkpoints:
        raise LabError("give at least one model to explain")
    if batch_size < 1:
        raise LabError(f"batch size must be >= 1, got {batch_size}")
    methods = resolve_methods(methods)
    explainers: dict[str, Explainer] = {}
    for name in methods:
        cls = EXPLAINERS.get(name)
        settings = {**(cls.quick_settings if quick else {}), **dict((method_settings or {}).get(name, {}))}
        explainers[name] = cls(**settings)
    models: list[tuple[Any, Path | None]] = [(model_of(c), getattr(c, "path", None)) for c in checkpoints]
    shape = tuple(models[0][0].info.input_shape)
    for model, path in models[1:]:
        if tuple(model.info.input_shape) != shape:
            where = str(path.parent) if path is not None else model.info.arch
            raise LabError(f"models to compare must take the same images; {where} takes "
                           f"{tuple(model.info.input_shape)}, the first {shape}")  # fmt: skip
    if attack is None and eps is not None:
        raise LabError("an epsilon needs an attack to go with it")
    x_cpu = to_float(images, "cpu")
    if x_cpu.ndim != 4 or tuple(x_cpu.shape[1:]) != shape:
        raise LabError(f"images must be shaped [N, {', '.join(map(str, shape))}], got {tuple(x_cpu.shape)}")
    n = x_cpu.shape[0]
    if n == 0:
        raise LabError("no image to explain")
    y = None if labels is None else np.asarray(labels, dtype=np.int64).reshape(-1)
    if y is not None and y.shape != (n,):
        raise LabError(f"{n} images but {y.size} labels")
    names = list(names) if names is not None else [f"image[{i}]" for i in range(n)]

    default_names = [path.parent.name if path is not None else model.info.arch for model, path in models]
    if model_names is None:
        model_names = [f"{k + 1}:{nm}" if default_names.count(nm) > 1 else nm for k, nm in enumerate(default_names)]

    attack_cfg: dict[str, Any] | None = None
    results: list[ModelExplanations] = []
    for k, (model, path) in enumerate(models):
        info = model.info
        t_class = resolve_target(info.class_names, target) if target is not None else None
        device = next(model.parameters()).device
        t0 = time.perf_counter()
        x = x_cpu.to(device)
        pred, conf = _predict(model, x)

        maps, targets = _explain_all(model, explainers, x, pred, t_class, batch_size)
        entry = ModelExplanations(
            name=model_names[k], meta={"arch": info.arch, "dataset": info.dataset, "input_shape": list(shape)},
            class_names=list(info.class_names), predictions=pred, confidences=conf, targets=targets, maps=maps,
        )  # fmt: skip
        if path is not None:
            entry.meta.update(run=str(path.parent), checkpoint=str(path))
        if attack is not None:
            settings = dict(attack_settings or {})
            if "seed" not in settings and "seed" in attack_setting_names(attack):
                settings["seed"] = 0
            e = float(eps) if eps is not None else default_eps(info, norm)
            res = run_attack(model, attack, settings, e, norm, x, y, batch_size=max(batch_size, 1))
            x_adv = torch.from_numpy(res.adversarial).to(device)
            entry.adversarial = res.adversarial
            entry.adv_predictions, entry.adv_confidences = _predict(model, x_adv)
            entry.adv_maps, entry.adv_targets = _explain_all(model, explainers, x_adv, entry.adv_predictions, t_class,
                                                             batch_size)  # fmt: skip
            attack_cfg = res.attack
        entry.seconds = round(time.perf_counter() - t0, 4)
        results.append(entry)

    return ExplainRun(
        methods=methods, settings={m: e.config() for m, e in explainers.items()},
        signed={m: type(e).signed_for(e.config()) for m, e in explainers.items()},
        images=x_cpu.numpy().astype(np.float32), names=names, labels=y, models=results, attack=attack_cfg,
        source=dict(source or {}),
        meta={"created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "torch": torch.__version__},
        headings={m: type(e).heading() for m, e in explainers.items()},
    )  # fmt: skip
