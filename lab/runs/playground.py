"""What a dashboard page asks of the lab for one image, as plain functions (no Streamlit).

:func:`playground_step` is the Playground's whole computation for one setting of its
widgets: :func:`lab.runs.attack.run_attack` on one image, the class probabilities before and
after (for the top-k bars), and :func:`lab.runs.explain.run_explain` on the clean and the
adversarial image (one batch of two), with the cosine of each method's two maps.
:func:`defense_view` runs the same image through a defended model: a denoiser (its
``denoise`` output, prediction and, where it has one, its detector score) or an
adversarially trained model, either on the adversarial image made for the undefended model
(transfer, gray-box) or attacked itself (white-box). What kind of defense a checkpoint has is
read from its record and the defense registries (:func:`defense_kind`), never from a list of
names. ``benchmarks/dashboard_latency.py`` times exactly these functions; the words the pages
show about a defense are :mod:`lab.present.models`'.

Images are numpy: uint8 [C, H, W] as the data holds them, or float32 [C, H, W] in [0, 1].
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from defenses import DEFENSES
from defenses.denoisers import DENOISERS
from lab.core.errors import LabError
from lab.data.pixels import to_float
from lab.models.base import model_device, model_of
from lab.models.predict import inference, probabilities
from lab.runs.attack import AttackRunResult, ImageOutcome, run_attack
from lab.runs.explain import ExplainRun, cosine, run_explain

#: how the defense panel can feed a defended model
DEFENSE_MODES = ("transfer", "white-box")


def as_float_batch(images: np.ndarray) -> np.ndarray:
    """uint8 or float images [C, H, W] / [N, C, H, W] -> float32 [N, C, H, W] in [0, 1]."""
    a = np.asarray(images)
    if a.ndim == 3:
        a = a[None]
    if a.ndim != 4:
        raise LabError(f"images must be shaped [C, H, W] or [N, C, H, W], got {a.shape}")
    return to_float(a).numpy()


def class_probabilities(checkpoint: Any, images: np.ndarray) -> np.ndarray:
    """Softmax probabilities float64 [N, K] of the model on images [N, C, H, W] (or [C, H, W]), in eval mode."""
    model = model_of(checkpoint)
    x = to_float(as_float_batch(images), model_device(model))
    return probabilities(model, x).cpu().numpy().astype(np.float64)


def defense_record(record: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The checkpoint record's ``defense`` entry, or None for an undefended model."""
    d = (record or {}).get("defense")
    if not isinstance(d, Mapping) or d.get("name") in (None, "", "none"):
        return None
    return dict(d)


def defense_kind(record: Mapping[str, Any] | None, model: Any = None) -> str | None:
    """``"denoiser"``, ``"adversarial training"``, another defense's kind or name, or None (no defense).

    A denoiser: the record says so, names a registered denoiser, or ``model`` has a ``denoise``
    method. Adversarial training: the record names a registered training defense (every one but
    ``none``, which records no defense) or says ``kind = "training"``.
    """
    d = defense_record(record)
    denoised = model is not None and hasattr(model_of(model), "denoise")
    if d is None:
        return "denoiser" if denoised else None
    if denoised or d.get("kind") == "denoiser" or d.get("name") in DENOISERS:
        return "denoiser"
    if d.get("kind") == "training" or d.get("name") in DEFENSES:
        return "adversarial training"
    return str(d.get("kind") or d.get("name"))


def _model_method(checkpoint: Any, images: np.ndarray, method: str) -> np.ndarray | None:
    """``model.<method>(x)`` in eval mode without gradients, as float32 numpy; None when the model has no such method."""
    model = model_of(checkpoint)
    fn = getattr(model, method, None)
    if fn is None:
        return None
    x = to_float(as_float_batch(images), model_device(model))
    with inference(model):
        return fn(x).detach().float().cpu().numpy()


def denoise_images(checkpoint: Any, images: np.ndarray) -> np.ndarray | None:
    """The model's ``denoise`` output float32 [N, C, H, W], or None when it has no denoiser."""
    out = _model_method(checkpoint, images, "denoise")
    return None if out is None else np.clip(out, 0, 1)


def detector_scores(checkpoint: Any, images: np.ndarray) -> np.ndarray | None:
    """The model's ``detector_score`` float64 [N] (a denoiser's reconstruction error), or None."""
    out = _model_method(checkpoint, images, "detector_score")
    return None if out is None else np.asarray(out, dtype=np.float64).reshape(-1)


@dataclass
class PlaygroundResult:
    """One image attacked and explained: what the Playground draws."""

    attack: AttackRunResult  # one image
    probs_clean: np.ndarray  # float64 [K]
    probs_adversarial: np.ndarray  # float64 [K]
    explanations: ExplainRun | None  # on [clean, adversarial], or None without methods
    seconds_attack: float
    seconds_explain: float
    #: method -> cosine of its clean and adversarial maps (None: an all-zero map)
    map_cosines: dict[str, float | None] = field(default_factory=dict)

    @property
    def outcome(self) -> ImageOutcome:
        """The attack's outcome for the image."""
        return self.attack.images[0]


def playground_step(
    checkpoint: Any,
    image: np.ndarray,
    label: int | None,
    *,
    attack: str,
    settings: Mapping[str, Any],
    eps: float,
    norm: str,
    methods: Sequence[str] = (),
    quick: bool = True,
    name: str = "image",
) -> PlaygroundResult:
    """Attack one image ([C, H, W], uint8 or float) and explain it clean and attacked.

    ``label`` None attacks the model's clean prediction (uploads). ``methods``: explanation
    methods (none: no explanations); ``quick`` uses their cheap preview settings. The
    explanations target each image's predicted class.
    """
    x = as_float_batch(image)
    if x.shape[0] != 1:
        raise LabError(f"the playground takes one image, got {x.shape[0]}")
    t0 = time.perf_counter()
    res = run_attack(checkpoint, attack, dict(settings), float(eps), norm, x, None if label is None else [int(label)],
                     names=[name])  # fmt: skip
    pair = np.concatenate([res.clean, res.adversarial])
    probs = class_probabilities(checkpoint, pair)
    t1 = time.perf_counter()
    expl = None
    cosines: dict[str, float | None] = {}
    if methods:
        expl = run_explain([checkpoint], list(methods), pair, names=["clean", "adversarial"], quick=quick)
        maps = expl.models[0].maps
        cosines = {m: cosine(maps[m][0], maps[m][1]) for m in expl.methods}
    t2 = time.perf_counter()
    return PlaygroundResult(attack=res, probs_clean=probs[0], probs_adversarial=probs[1], explanations=expl,
                            seconds_attack=t1 - t0, seconds_explain=t2 - t1, map_cosines=cosines)  # fmt: skip


@dataclass
class DefenseView:
    """A defended model shown the playground's image (clean) and an adversarial version of it."""

    kind: str  # "denoiser" | "adversarial training" | another defense's name | "none"
    mode: str  # "transfer" (the undefended model's adversarial image) | "white-box" (attacked itself)
    adversarial: np.ndarray  # float32 [C, H, W]: the adversarial image the defended model saw
    probs_clean: np.ndarray  # float64 [K]
    probs_adversarial: np.ndarray
    denoised_clean: np.ndarray | None = None  # float32 [C, H, W] (denoisers)
    denoised_adversarial: np.ndarray | None = None
    detector_clean: float | None = None  # reconstruction error (denoisers that have a detector)
    detector_adversarial: float | None = None
    attack: AttackRunResult | None = None  # white-box: the attack run on the defended model
    seconds: float = 0.0

    @property
    def prediction_clean(self) -> int:
        """The defended model's class for the clean image."""
        return int(np.argmax(self.probs_clean))

    @property
    def prediction_adversarial(self) -> int:
        """The defended model's class for the adversarial image."""
        return int(np.argmax(self.probs_adversarial))


def defense_view(
    defended: Any,
    record: Mapping[str, Any] | None,
    clean: np.ndarray,
    adversarial: np.ndarray,
    label: int | None,
    *,
    mode: str = "transfer",
    attack: str = "pgd",
    settings: Mapping[str, Any] | None = None,
    eps: float = 0.0,
    norm: str = "linf",
) -> DefenseView:
    """Run the defended model on ``clean`` and on an adversarial image ([C, H, W] each).

    ``mode="transfer"``: ``adversarial`` is the image made against the undefended model (the
    gray-box view: the attacker did not know the defense). ``mode="white-box"``: the
    defended model (denoiser included, end to end) is attacked with ``attack``/``settings``/
    ``eps``/``norm`` itself, and ``adversarial`` is ignored.
    """
    if mode not in DEFENSE_MODES:
        raise LabError(f"unknown defense mode {mode!r}; choose {' or '.join(DEFENSE_MODES)}")
    model = model_of(defended)
    x = as_float_batch(clean)
    shape = tuple(int(v) for v in model.info.input_shape)
    if tuple(x.shape[1:]) != shape:
        raise LabError(f"the defended model takes images {shape}, but this image is {tuple(x.shape[1:])}")
    t0 = time.perf_counter()
    run = None
    if mode == "white-box":
        run = run_attack(defended, attack, dict(settings or {}), float(eps), norm, x,
                         None if label is None else [int(label)])  # fmt: skip
        x_adv = run.adversarial
    else:
        x_adv = as_float_batch(adversarial)
        if tuple(x_adv.shape[1:]) != shape:
            raise LabError(f"the adversarial image is {tuple(x_adv.shape[1:])}, the defended model takes {shape}")
    pair = np.concatenate([x, x_adv])
    probs = class_probabilities(defended, pair)
    view = DefenseView(kind=defense_kind(record, defended) or "none", mode=mode, adversarial=x_adv[0],
                       probs_clean=probs[0], probs_adversarial=probs[1], attack=run)  # fmt: skip
    den = denoise_images(defended, pair)
    if den is not None:
        view.denoised_clean, view.denoised_adversarial = den[0], den[1]
    scores = detector_scores(defended, pair)
    if scores is not None:
        view.detector_clean, view.detector_adversarial = float(scores[0]), float(scores[1])
    view.seconds = time.perf_counter() - t0
    return view
