"""Pickers the pages share: a model from the runs folder, an image (test-set browser by
class, or an upload), an attack with its norm, settings and epsilon, explanation methods.

Choices come from the registries (``attacks.ATTACKS``, ``explain.EXPLAINERS``), defaults
from the API (:func:`lab.core.epsilon.default_eps`, each attack's signature and
``quick_settings``); every widget has a ``key`` so tests can drive it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import streamlit as st

from attacks import ATTACKS
from explain import EXPLAINERS
from lab.core.epsilon import default_eps, eps_style, format_eps
from lab.core.errors import LabError
from lab.core.settings import setting_defaults
from lab.core.text import pct
from lab.dashboard import cache
from lab.dashboard.ui import run_name
from lab.dashboard.uploads import MAX_UPLOAD_BYTES, UPLOAD_SUFFIXES, looks_inverted, read_upload
from lab.models import MODELS
from lab.present.models import defense_label
from lab.present.text import norm_name
from lab.runs.attack import attack_setting_names
from lab.runs.playground import defense_kind

#: attacks whose full settings cost more than this (forward+backward passes per image, the
#: attack's own ``cost``) start with their cheap preview settings: boundary, cw, hopskipjump
#: and autoattack take seconds on one image at full settings, the rest well under one
PREVIEW_COST = 2000.0
#: explanation methods preselected on the Playground (two cheap ones; attention added when the model has it)
DEFAULT_METHODS = ("integrated_gradients", "gradcam")
#: at most this many steps from the Playground's steps field (keeps a page responsive)
MAX_STEPS = 500


# ---------------------------------------------------------------- models


def readable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if not r.get("error")]


def classifiers(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The readable checkpoints that answer every input: not a ``[detector]`` recipe's run (a
    guarded model; the Playground's and Compare page's detector views guard a classifier)."""
    return [r for r in readable(rows) if (r.get("defense") or {}).get("kind") != "detector"]


def detector_runs(rows: list[dict[str, Any]], classifier: dict[str, Any], detector: str) -> list[dict[str, Any]]:
    """The ``[detector]`` recipes' runs in ``rows`` that guard ``classifier``'s weights (the same
    SHA-256) with ``detector``: a saved guarded model, its threshold fixed when it was made."""
    sha = classifier.get("weights_sha256")
    return [r for r in readable(rows) if sha and (d := r.get("defense") or {}).get("kind") == "detector"
            and d.get("name") == detector and (d.get("classifier") or {}).get("weights_sha256") == sha]  # fmt: skip


def unreadable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r.get("error")]


def model_label(row: dict[str, Any], root: str | os.PathLike[str]) -> str:
    """``mnist_smallcnn: smallcnn on mnist, 99.46%, defense none``."""
    acc = (row.get("metrics") or {}).get("test_acc")
    text = f"{run_name(row['path'], root)}: {row.get('arch')} on {row.get('dataset')}"
    if acc is not None:
        text += f", {pct(acc)}"
    d = defense_label({"defense": row.get("defense")})
    if d != "none":
        text += f", {d}"
    if row.get("status") not in (None, "complete"):
        text += f" [{row.get('status')}]"
    return text


def is_defended(row: dict[str, Any]) -> bool:
    return defense_kind({"defense": row.get("defense")}) is not None


def has_attention(row: dict[str, Any]) -> bool:
    """Whether the row's architecture computes attention maps of its own (``attention_cnn``)."""
    arch = row.get("arch")
    return arch in MODELS.names() and hasattr(MODELS.get(str(arch)), "forward_with_attention")


def model_picker(
    rows: list[dict[str, Any]],
    root: str | os.PathLike[str],
    *,
    key: str,
    label: str = "Model",
    where: Any = None,
    prefer_undefended: bool = True,
) -> dict[str, Any] | None:
    """A select box of the readable checkpoints; None when there is none."""
    where = where if where is not None else st.sidebar
    ok = classifiers(rows)
    if not ok:
        return None
    default = 0
    if prefer_undefended:  # a finished standard model, on MNIST when there is one: the classic first demo
        plain = sorted((i for i, r in enumerate(ok) if not is_defended(r)),
                       key=lambda i: (ok[i].get("status") not in (None, "complete"), ok[i].get("dataset") != "mnist",
                                      has_attention(ok[i]), i))  # fmt: skip
        default = plain[0] if plain else 0
    paths = [r["path"] for r in ok]
    by_path = {r["path"]: r for r in ok}
    chosen = where.selectbox(label, paths, index=default, key=key,
                             format_func=lambda p: model_label(by_path[p], root))  # fmt: skip
    bad = unreadable(rows)
    if bad:
        where.caption(f"{len(bad)} unreadable checkpoint{'s' if len(bad) > 1 else ''} skipped (see Models).")
    return by_path.get(chosen, ok[default])


def model_facts(row: dict[str, Any], record: dict[str, Any], root: str | os.PathLike[str]) -> list[tuple[str, str]]:
    """(name, value) facts about a model for a small table."""
    model = record.get("model") or {}
    training = record.get("training") or {}
    config = record.get("config") or {}
    facts = [("run", run_name(row["path"], root)), ("architecture", str(model.get("arch"))),
             ("dataset", str(model.get("dataset"))), ("input", "x".join(str(v) for v in model.get("input_shape", []))),
             ("test accuracy", pct((record.get("metrics") or {}).get("test_acc"))),
             ("defense", defense_label(record)),
             ("epochs", f"{training.get('epochs_completed', '-')}"
                        f"/{(config.get('train') or {}).get('epochs', '-')}"),
             ("recipe", str(config.get("name", "-"))), ("status", str(record.get("status", "-")))]  # fmt: skip
    return facts


def facts_markdown(facts: list[tuple[str, str]]) -> str:
    return "\n".join(f"- **{k}**: {v}" for k, v in facts)


# ---------------------------------------------------------------- images


@dataclass
class Picked:
    """The image a page works on: uint8 [C, H, W], its label (None for uploads)."""

    image: np.ndarray
    label: int | None
    name: str
    source: str  # "test" | "upload"
    notices: list[str] = field(default_factory=list)


SOURCES = ("Test set", "Upload")


def image_picker(path: str, info: Any, *, key: str, where: Any = None) -> Picked | None:
    """The test-set browser (a class, then an example of it) or an upload.

    Upload problems are LabErrors (the page shows the sentence); conversions are notices.
    """
    where = where if where is not None else st.sidebar
    source = where.radio("Image", SOURCES, key=f"{key}_source", horizontal=True)
    if source == "Upload":
        up = where.file_uploader("PNG or JPEG", type=list(UPLOAD_SUFFIXES), key=f"{key}_upload",
                                 max_upload_size=MAX_UPLOAD_BYTES // (1024 * 1024),
                                 help="Converted to the model's size and channels; each change is listed.")  # fmt: skip
        invert = where.checkbox("Invert colours", key=f"{key}_invert",
                                help="MNIST-like data is a light digit on a dark background.")  # fmt: skip
        if up is None:
            where.info("Upload an image, or switch to the test set.")
            return None
        res = read_upload(up.getvalue(), up.name, tuple(info.input_shape), invert=invert)
        notices = list(res.notices)
        if looks_inverted(res.x, info.dataset):
            notices.append(f"this image is mostly light, but {info.dataset} images are light on dark: "
                           "try 'Invert colours'")  # fmt: skip
        return Picked(image=res.x, label=None, name=up.name, source="upload", notices=notices)
    x, y, names = cache.test_set(path)
    classes = list(info.class_names)
    counts = np.bincount(y, minlength=len(classes))
    cls = where.selectbox("Class", list(range(len(classes))), key=f"{key}_class_{info.dataset}",
                          format_func=lambda c: f"{classes[c]} ({counts[c]} test images)")  # fmt: skip
    idx = np.flatnonzero(y == cls)
    if idx.size == 0:
        where.info(f"The test set has no image of class {classes[cls]!r}.")
        return None
    k = 0
    if idx.size > 1:
        k = int(where.slider("Example of this class", 0, int(min(idx.size, 1000)) - 1, 0,
                             key=f"{key}_example_{info.dataset}"))  # fmt: skip
    i = int(idx[k])
    return Picked(image=x[i], label=int(y[i]), name=names[i], source="test")


# ---------------------------------------------------------------- attacks


@dataclass
class AttackChoice:
    name: str
    norm: str
    eps: float
    settings: dict[str, Any]

    @property
    def title(self) -> str:
        """``pgd-20 (L-inf, eps 0.3)``: the steps when the attack has a ``steps`` setting."""
        steps = self.settings.get("steps")
        name = f"{self.name}-{steps}" if steps else self.name
        return f"{name} ({norm_name(self.norm)}, eps {format_eps(self.eps)})"


def setting_default(attack: str, setting: str) -> Any:
    """The default of attack ``attack``'s ``setting`` (None when it has none)."""
    return setting_defaults(ATTACKS.get(attack)).get(setting)


def eps_slider(info: Any, norm: str, *, key: str, where: Any = None) -> float:
    """Epsilon in the data's units: a slider over [0, 1] pixel values for gray data, a
    ``k/255`` slider for colour (CIFAR-like) data; starts at the conventional radius."""
    where = where if where is not None else st
    style = eps_style({"input_shape": list(info.input_shape)})
    default = default_eps(info, norm)
    label = f"Epsilon ({norm_name(norm)} radius, pixel values in [0, 1])"
    if norm == "linf" and style == "255":
        options = [k / 255 for k in range(0, 33)]
        value = min(options, key=lambda v: abs(v - default))
        return float(where.select_slider(label, options, value=value, key=f"{key}_eps_{norm}_{style}",
                                         format_func=lambda v: format_eps(v, "255")))  # fmt: skip
    if norm == "linf":
        return float(
            where.slider(label, 0.0, 0.5, float(default), 0.01, format="%.2f", key=f"{key}_eps_{norm}_{style}")
        )
    top, step = (5.0, 0.1) if style != "255" else (2.0, 0.05)
    return float(where.slider(label, 0.0, top, float(default), step, format="%.2f", key=f"{key}_eps_{norm}_{style}"))


def attack_controls(info: Any, *, key: str, where: Any = None) -> AttackChoice:
    """Attack (every registered one), norm (those it supports), steps, preview settings, epsilon."""
    where = where if where is not None else st
    names = ATTACKS.names()
    c1, c2, c3 = where.columns([2, 1.3, 1.5])
    name = c1.selectbox("Attack", names, index=names.index("pgd") if "pgd" in names else 0, key=f"{key}_attack",
                        format_func=lambda n: f"{n} ({ATTACKS.get(n).kind})")  # fmt: skip
    cls = ATTACKS.get(name)
    norms = list(cls.norms)
    norm = c2.radio("Norm", norms, key=f"{key}_norm_{name}", horizontal=True, format_func=norm_name)
    params = attack_setting_names(name)
    try:
        expensive = float(cls(eps=default_eps(info, norm), norm=norm).cost) > PREVIEW_COST
    except (LabError, TypeError, ValueError):  # a cost that cannot be computed here: play safe, preview
        expensive = True
    preview = c3.toggle("Preview settings", value=expensive, key=f"{key}_preview_{name}",
                        help=f"The attack's cheap settings {cls.quick_settings or '{}'} instead of its full defaults; "
                             "robustness numbers need the full attack (lab eval).")  # fmt: skip
    settings: dict[str, Any] = dict(cls.quick_settings) if preview else {}
    if "steps" in params:
        default = settings.get("steps", setting_default(name, "steps"))
        default = int(default) if isinstance(default, int) and default > 0 else 20
        settings["steps"] = int(
            c3.number_input("Steps", 1, max(MAX_STEPS, default), default, key=f"{key}_steps_{name}_{preview}")
        )
    eps = eps_slider(info, norm, key=key, where=where)
    return AttackChoice(name=name, norm=norm, eps=eps, settings=settings)


def method_picker(model: Any, *, key: str, where: Any = None) -> tuple[list[str], bool]:
    """Explanation methods (those that read attention maps only for attention models) and the preview toggle."""
    where = where if where is not None else st
    has_attention = bool(getattr(model, "has_attention", False))
    names = [n for n, cls in EXPLAINERS.items() if has_attention or not cls.needs_attention]
    attention = [n for n in names if EXPLAINERS.get(n).needs_attention]
    default = attention + [m for m in DEFAULT_METHODS if m in names]
    c1, c2 = where.columns([4, 1])
    methods = c1.multiselect("Explanation methods", names, default=default[:3], key=f"{key}_methods_{has_attention}")
    quick = c2.toggle("Preview settings", value=True, key=f"{key}_quick",
                      help="Each method's cheap settings (fewer integration steps or noise samples).")  # fmt: skip
    return list(methods), bool(quick)
