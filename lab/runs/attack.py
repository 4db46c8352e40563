"""One attack on a few images, with everything a person wants to look at afterwards.

``run_attack(checkpoint, "pgd", {"steps": 40}, 0.3, "linf", images, labels)`` returns an
:class:`AttackRunResult`: the clean and adversarial images (numpy, [0, 1]), and per image
the label, the prediction and confidence before and after, the perturbation's L-inf and
L2 norms and whether the model was fooled; plus accuracy before/after and the success
rate. ``lab attack`` renders it (:func:`lab.present.files.write_attack_run`); the dashboard calls
the same function for one image. Robust-accuracy numbers over many attacks and epsilons
are :func:`lab.evaluation.engine.evaluate`'s job, not this one's.
"""

from __future__ import annotations

import datetime as _dt
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from attacks import ATTACKS
from lab.core.epsilon import check_eps
from lab.core.errors import LabError
from lab.core.settings import coerce_settings, setting_names
from lab.data.pixels import to_float
from lab.evaluation.report import jsonable
from lab.models.base import model_of
from lab.models.predict import classify

ATTACK_RUN_FORMAT = "lab-attack-run"
ATTACK_RUN_VERSION = 1
#: how the perturbation PNGs are made (written into attack.json next to them)
PERTURBATION_NOTE = (
    "amplified for visibility: pixel = 0.5 + delta * scale, scale = 0.5 / max|delta| per image "
    "(listed per image as perturbation_scale); mid-gray means unchanged"
)


# ---------------------------------------------------------------- settings


#: an attack's radius and norm are given next to its settings, never as settings
GIVEN_SEPARATELY = ("eps", "norm")


def attack_setting_names(name: str) -> list[str]:
    """The settings attack ``name``'s ``__init__`` accepts, besides ``eps`` and ``norm``."""
    return setting_names(ATTACKS.get(name), exclude=GIVEN_SEPARATELY)


def attack_settings(name: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """Check ``settings`` against attack ``name``'s ``__init__`` and convert text values
    (``{"steps": "40", "alpha": "1/255"}``, as typed on the CLI or the dashboard).

    LabError naming the valid settings for an unknown key (``eps`` and ``norm`` are given
    separately, never as settings).
    """
    cls = ATTACKS.get(name)
    for key in GIVEN_SEPARATELY:
        if key in settings:
            raise LabError(f"{key} is not a setting of attack {name!r}: it is given separately, next to the settings")
    return coerce_settings("attack", cls, settings, from_text=True, exclude=GIVEN_SEPARATELY)


def parse_params(items: Sequence[str]) -> dict[str, str]:
    """``["steps=40", "loss=margin"]`` -> ``{"steps": "40", "loss": "margin"}`` (text values)."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise LabError(f"--param {item!r} must be KEY=VALUE, e.g. steps=40")
        if key in out:
            raise LabError(f"--param {key} is given twice")
        out[key] = value.strip()
    return out


def resolve_target(class_names: Sequence[str], text: str | int) -> int:
    """A target class by index (``3``) or name (``"Dress"``, case-insensitive)."""
    k = len(class_names)
    s = str(text).strip()
    if s.lstrip("-").isdigit():
        i = int(s)
        if 0 <= i < k:
            return i
        raise LabError(f"target class {i} is out of range; the model has classes 0..{k - 1}")
    lower = [c.lower() for c in class_names]
    if s.lower() in lower:
        return lower.index(s.lower())
    raise LabError(f"unknown target class {s!r}; give an index 0..{k - 1} or one of: {', '.join(class_names)}")


# ---------------------------------------------------------------- the run


@dataclass
class ImageOutcome:
    """One image before and after the attack. Norms are of the float perturbation."""

    index: int
    name: str  # "test[123]" or the file it came from
    label: int
    label_name: str
    prediction_before: int
    confidence_before: float
    prediction_after: int
    confidence_after: float
    linf: float
    l2: float
    fooled: bool  # prediction_after != label
    #: untargeted: correct before and fooled after; targeted: target != label and prediction_after == target
    success: bool
    target: int | None = None
    test_index: int | None = None
    perturbation_scale: float = 1.0


@dataclass
class AttackRunResult:
    """What :func:`run_attack` returns; ``to_dict`` is the JSON (without the pixel arrays)."""

    model: dict[str, Any]
    attack: dict[str, Any]  # the attack's config(), eps and norm included
    eps: float
    norm: str
    targeted: str  # "no" | "class" | "random"
    label_source: str  # "dataset" | "prediction" (user files: the clean prediction is the label)
    images: list[ImageOutcome]
    clean: np.ndarray = field(repr=False)  # float32 [N, C, H, W] in [0, 1]
    adversarial: np.ndarray = field(repr=False)
    accuracy_before: float | None
    accuracy_after: float | None
    success_rate: float | None
    success_rate_over: str
    seconds: float
    class_names: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def perturbation(self) -> np.ndarray:
        return self.adversarial - self.clean

    def to_dict(self) -> dict[str, Any]:
        return jsonable({
            "format": ATTACK_RUN_FORMAT, "format_version": ATTACK_RUN_VERSION,
            "model": self.model, "attack": self.attack, "eps": self.eps, "norm": self.norm,
            "targeted": self.targeted, "label_source": self.label_source,
            "images": [asdict(i) for i in self.images],
            "summary": {
                "n": len(self.images), "accuracy_before": self.accuracy_before,
                "accuracy_after": self.accuracy_after, "success_rate": self.success_rate,
                "success_rate_over": self.success_rate_over, "fooled": sum(i.fooled for i in self.images),
                "seconds": self.seconds,
            },
            "perturbation_images": PERTURBATION_NOTE,
            "class_names": self.class_names, "meta": self.meta,
        })  # fmt: skip


def run_attack(
    checkpoint: Any,
    attack_name: str,
    settings: Mapping[str, Any],
    eps: float,
    norm: str,
    images: torch.Tensor | np.ndarray,
    labels: torch.Tensor | np.ndarray | Sequence[int] | None = None,
    target: int | str | None = None,
    *,
    batch_size: int = 256,
    names: Sequence[str] | None = None,
    test_indices: Sequence[int] | None = None,
    source: Mapping[str, Any] | None = None,
) -> AttackRunResult:
    """Run attack ``attack_name`` with ``settings`` at radius ``eps`` on ``images``.

    ``checkpoint``: a :class:`lab.training.checkpoint.Checkpoint` or a LabModel. ``images``: uint8
    [N, C, H, W] (numpy) or float [N, C, H, W] in [0, 1]. ``labels``: [N] class indices, or
    None to attack the model's own clean predictions (user images). ``target``: None
    (untargeted), a class index or name (every image gets that target), or ``"random"``
    (a random other class per image, seeded by the ``seed`` setting). ``names``,
    ``test_indices`` and ``source`` (where the images came from) are recorded as given.
    """
    model = model_of(checkpoint)
    info = model.info
    path = getattr(checkpoint, "path", None)
    if batch_size < 1:
        raise LabError(f"batch size must be >= 1, got {batch_size}")
    check_eps([eps], norm, info.input_shape)
    conf = attack_settings(attack_name, settings)
    attack = ATTACKS.get(attack_name)(eps=eps, norm=norm, **conf)
    device = next(model.parameters()).device

    x = to_float(images, device)
    if x.ndim != 4 or tuple(x.shape[1:]) != tuple(info.input_shape):
        raise LabError(f"images must be shaped [N, {', '.join(map(str, info.input_shape))}], got {tuple(x.shape)}")
    n = x.shape[0]
    if n == 0:
        raise LabError("no image to attack")

    pred0, conf0 = classify(model, x, batch_size)  # eval mode, fp32
    if labels is None:
        y, label_source = pred0.clone(), "prediction"
    else:
        y = torch.as_tensor(np.asarray(labels), dtype=torch.int64, device=device)
        label_source = "dataset"
        if y.shape != (n,):
            raise LabError(f"{n} images but {tuple(y.shape)} labels")
    k = info.num_classes
    t: torch.Tensor | None = None
    targeted = "no"
    if isinstance(target, str) and target == "random":
        if k < 2:
            raise LabError("a random target needs at least two classes")
        gen = torch.Generator().manual_seed(int(conf.get("seed", 0)))
        shift = torch.randint(1, k, (n,), generator=gen).to(device)
        t, targeted = (y + shift) % k, "random"
    elif target is not None:
        t, targeted = torch.full((n,), resolve_target(info.class_names, target), dtype=torch.int64, device=device), "class"

    t0 = time.perf_counter()
    parts = []
    for i in range(0, n, batch_size):
        tb = t[i : i + batch_size] if t is not None else None
        parts.append(attack(model, x[i : i + batch_size], y[i : i + batch_size], target=tb))
    x_adv = torch.cat(parts)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - t0
    pred1, conf1 = classify(model, x_adv, batch_size)

    delta = (x_adv - x).flatten(1)
    linf = delta.abs().amax(1)
    l2 = delta.norm(dim=1)
    fooled = pred1 != y
    success = (pred1 == t) if t is not None else fooled
    if t is not None:
        over = t != y  # a target equal to the label is no goal
        success_over = "images whose target differs from their label"
    else:
        over = pred0 == y  # fooling an image the model already gets wrong is no success
        success_over = "images classified correctly before the attack"
    if label_source == "prediction" and t is None:
        success_over = "all images (labels are the model's clean predictions)"
    n_over = int(over.sum())
    success_rate = float((success & over).sum()) / n_over if n_over else None
    if label_source == "dataset":
        acc0: float | None = float((pred0 == y).float().mean())
        acc1: float | None = float((pred1 == y).float().mean())
    else:
        acc0 = acc1 = None

    scale = torch.where(linf > 0, 0.5 / linf.clamp_min(1e-12), torch.ones_like(linf))
    names = list(names) if names is not None else [f"image[{i}]" for i in range(n)]
    cls = list(info.class_names)
    rows = [
        ImageOutcome(
            index=i, name=names[i], label=int(y[i]), label_name=cls[int(y[i])],
            prediction_before=int(pred0[i]), confidence_before=float(conf0[i]),
            prediction_after=int(pred1[i]), confidence_after=float(conf1[i]),
            linf=float(linf[i]), l2=float(l2[i]), fooled=bool(fooled[i]), success=bool(success[i] & over[i]),
            target=int(t[i]) if t is not None else None,
            test_index=int(test_indices[i]) if test_indices is not None else None,
            perturbation_scale=float(scale[i]),
        )
        for i in range(n)
    ]  # fmt: skip
    model_meta = {"arch": info.arch, "dataset": info.dataset, "input_shape": list(info.input_shape)}
    if path is not None:
        model_meta["run"] = str(path.parent)
        model_meta["checkpoint"] = str(path)
    return AttackRunResult(
        model=model_meta, attack=attack.config(), eps=float(eps), norm=norm, targeted=targeted,
        label_source=label_source, images=rows,
        clean=x.detach().cpu().numpy().astype(np.float32), adversarial=x_adv.detach().cpu().numpy().astype(np.float32),
        accuracy_before=acc0, accuracy_after=acc1, success_rate=success_rate, success_rate_over=success_over,
        seconds=round(seconds, 4), class_names=cls,
        meta={"created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "device": str(device),
              "torch": torch.__version__, "data": dict(source or {})},
    )  # fmt: skip
