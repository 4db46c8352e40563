"""Judging a detector: ``evaluate_detection(model, detector, x, y, eps, x_calib=...) -> DetectionReport``.

The threshold is set on held-out clean images ``x_calib`` for the false-positive rate ``fpr``
(:func:`defenses.detectors.calibrate`) and recorded. Then, per radius, two threat rows attack
every image (L-inf PGD from a random start):

* **naive**: PGD on the classifier's cross-entropy, ignoring the detector (what a detector's
  paper usually reports);
* **adaptive** (Carlini and Wagner 2017, "Adversarial Examples Are Not Easily Detected"): PGD on
  both at once, maximizing ``min(margin / s_m, (threshold - score) / s_d)``, where ``margin =
  max_{j != y} z_j - z_y``, and ``s_m``, ``s_d`` are the spreads of the clean margins and scores
  (so neither term drowns the other); an image is won when both are positive. Where the
  detector is not differentiable its BPDA stand-in gives the gradient (``score(..., bpda=True)``),
  while success is always judged with the true score;
* **adaptive-views**, for a detector that compares the input's prediction with its predictions on
  transformed views of it (feature squeezing: :meth:`defenses.detectors.Detector.views`): the same
  objective with the margin targeted at each image's most likely wrong class (restart ``r``: the
  ``r``-th) and taken as the smallest over the input and every view, so that all of them are
  misclassified as one class and their predictions agree (He et al. 2017, "Adversarial Example
  Defenses: Ensembles of Weak Defenses are not Strong").

Per row: the ROC AUC of the score between the clean test images the model classifies correctly
and the adversarial examples that fool the classifier; the detection rate at the threshold among
those; and the **robust accuracy with rejection**: an image counts when its clean version is
classified correctly and not rejected and its adversarial example is either classified
correctly or rejected. The headline at each radius is the per-image worst case over the rows.
"""

from __future__ import annotations

import datetime as _dt
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import rankdata
from torch import nn

from attacks.pgd import PGD
from defenses.detectors import Detector, calibrate, scores_of
from lab.core.epsilon import check_eps
from lab.core.errors import LabError
from lab.core.io import atomic_write_json
from lab.core.progress import progress as progress_bar
from lab.core.rng import image_seeds
from lab.core.threat import make_threat
from lab.evaluation.report import jsonable
from lab.models.base import check_images, frozen_eval

DETECTION_FORMAT = "lab-detection-report"
ROWS = ("naive", "adaptive")
#: the row added for a detector with views (:meth:`defenses.detectors.Detector.views`)
VIEWS_ROW = "adaptive-views"


def rows_for(detector: Detector, x: torch.Tensor) -> tuple[str, ...]:
    """The threat rows that judge ``detector`` (``x``: an image, to ask it for views)."""
    with torch.no_grad():
        return (*ROWS, VIEWS_ROW) if detector.views(x) else ROWS


def _attack_label(row: str, steps: int, detector: Detector) -> str:
    bpda = ", BPDA" if not detector.differentiable else ""
    if row == "naive":
        return f"PGD-{steps} (classifier only)"
    if row == VIEWS_ROW:
        return f"PGD-{steps} (targeted: the input and every view of the detector as one class, and its score{bpda})"
    return f"PGD-{steps} (classifier and detector{bpda})"


@dataclass
class DetectionRow:
    row: str
    attack: str
    auc: float  # clean (correct) vs adversarial examples that fool the classifier; NaN if either is empty
    detection_rate: float  # of those adversarial examples, the fraction rejected at the threshold
    fooled_classifier: float  # fraction of the images whose adversarial example the classifier gets wrong
    robust_with_rejection: float
    robust_examples: list[int] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class DetectionEps:
    eps: float
    rows: list[DetectionRow]
    #: the per-image worst case over the rows
    robust_with_rejection: float
    robust_examples: list[int] = field(default_factory=list)


@dataclass
class DetectionReport:
    model: dict[str, Any]
    detector: dict[str, Any]  # name, title, settings, differentiable
    threshold: float
    fpr_target: float
    fpr_test: float  # the clean test images (correctly classified) the threshold rejects
    n: int
    clean_accuracy: float
    clean_accuracy_with_rejection: float  # correct and not rejected
    results: list[DetectionEps]
    steps: int = 100
    seconds: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return jsonable({"format": DETECTION_FORMAT, **asdict(self)})

    def save(self, path: str | Path) -> Path:
        p = Path(path)
        atomic_write_json(p, self.to_dict())
        return p


def roc_auc(negatives: np.ndarray, positives: np.ndarray) -> float:
    """P(positive score > negative score) + P(equal) / 2 (the Mann-Whitney statistic); NaN if one is empty."""
    if len(negatives) == 0 or len(positives) == 0:
        return float("nan")
    ranks = rankdata(np.concatenate([negatives, positives]))
    r_pos = ranks[len(negatives):].sum()
    return float((r_pos - len(positives) * (len(positives) + 1) / 2) / (len(negatives) * len(positives)))


def _margin(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``max_{j != y} z_j - z_y`` [B]: positive when misclassified."""
    true = logits.gather(1, y.view(-1, 1)).squeeze(1)
    other = logits.scatter(1, y.view(-1, 1), float("-inf")).max(1).values
    return other - true


def _objective(model: nn.Module, detector: Detector, xa: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None,
               threshold: float, scale_margin: float, scale_score: float) -> torch.Tensor:  # fmt: skip
    """[B] what the adaptive attacks maximize: ``min(margin / s_m, (threshold - score) / s_d)``; with
    ``target``, the margin is the smallest targeted one over the input and every detector view."""
    bpda = not detector.differentiable
    s = (threshold - detector.score(model, xa, bpda=bpda).float()) / scale_score
    if target is None:
        return torch.minimum(_margin(model(xa).float(), y) / scale_margin, s)
    views = [xa, *detector.views(xa, bpda=bpda)]
    m = torch.stack([-_margin(model(v).float(), target) for v in views], 1).min(1).values  # z_t - max_{j != t} z_j
    return torch.minimum(m / scale_margin, s)


def _targets(model: nn.Module, x: torch.Tensor, y: torch.Tensor, rank: int) -> torch.Tensor:
    """[B] each image's ``rank``-th most likely wrong class on the clean image (0: the runner-up)."""
    with torch.no_grad():
        z = model(x).float().scatter(1, y.view(-1, 1), float("-inf"))
    return z.argsort(1, descending=True)[:, rank % (z.shape[1] - 1)]


def adaptive_pgd(model: nn.Module, detector: Detector, x: torch.Tensor, y: torch.Tensor, *, eps: float,
                 threshold: float, scale_margin: float, scale_score: float, steps: int = 100, restarts: int = 1,
                 seed: int = 0, views: bool = False) -> torch.Tensor:  # fmt: skip
    """L-inf PGD maximizing ``min(margin / scale_margin, (threshold - score) / scale_score)``; with
    ``views``, the margin is targeted (restart ``r`` at each image's ``r``-th most likely wrong class)
    and the smallest over the input and each of the detector's views (all misclassified as the
    target, their predictions agree: He et al. 2017 against feature squeezing). Returns, per image,
    the first iterate that is misclassified and not detected, else the last one."""
    threat = make_threat("linf", eps)
    alpha = 2.5 * eps / steps
    best = x.clone()
    won = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
    for r in range(restarts):
        gens = [torch.Generator(device=x.device).manual_seed(s) for s in image_seeds(x, seed, stream=r)]
        delta = threat.init_per_image(x, gens)
        target = _targets(model, x, y, r) if views else None
        for _ in range(steps):
            todo = ~won
            if not todo.any():
                return best
            xa = (x[todo] + delta[todo]).clamp(0, 1).requires_grad_(True)
            with torch.enable_grad():
                obj = _objective(model, detector, xa, y[todo], None if target is None else target[todo], threshold,
                                 scale_margin, scale_score)  # fmt: skip
                (g,) = torch.autograd.grad(obj.sum(), xa)
            d = delta[todo] + threat.step(g) * alpha
            d = threat.project(d)
            d = (x[todo] + d).clamp(0, 1) - x[todo]
            delta[todo] = d
            xa = (x[todo] + d).detach()
            with torch.no_grad():
                ok = (_margin(model(xa).float(), y[todo]) > 0) & (detector.score(model, xa).float() <= threshold)
            idx = todo.nonzero().flatten()
            best[idx[ok]] = xa[ok]
            won[idx[ok]] = True
            last = ~won
            best[last] = (x[last] + delta[last]).clamp(0, 1)
    return best


def _predict(model: nn.Module, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([model(x[i:i + batch_size]).argmax(1) for i in range(0, x.shape[0], batch_size)])


def evaluate_detection(model: nn.Module, detector: Detector, x: torch.Tensor, y: torch.Tensor, eps: Sequence[float],
                       *, x_calib: torch.Tensor, fpr: float = 0.05, steps: int = 100, restarts: int = 1,
                       batch_size: int = 250, seed: int = 0, progress: bool = True,
                       model_meta: dict[str, Any] | None = None, threshold: float | None = None) -> DetectionReport:  # fmt: skip
    """Judge ``detector`` protecting ``model`` on images ``x`` [N, C, H, W] with labels ``y`` at each
    L-inf radius of ``eps``; the threshold from the clean held-out ``x_calib`` at ``fpr``, or
    ``threshold`` where one was saved with the detector (a ``[detector]`` recipe's run)."""
    eps_list = check_eps(list(eps), "linf")
    x, x_calib = check_images(x), check_images(x_calib)
    if steps < 1 or restarts < 1:
        raise LabError(f"the attacks need at least one step and one restart, got {steps} and {restarts}")
    t0 = time.perf_counter()
    n = x.shape[0]
    with frozen_eval(model):
        if threshold is None:
            threshold = calibrate(model, detector, x_calib, fpr)
        pred = _predict(model, x, batch_size)
        correct = pred == y
        clean_scores = scores_of(model, detector, x, batch_size)
        clean_ok = correct & (clean_scores <= threshold)
        with torch.no_grad():
            margins = torch.cat([_margin(model(x[i:i + batch_size]).float(), y[i:i + batch_size])
                                 for i in range(0, n, batch_size)])  # fmt: skip
        calib_scores = scores_of(model, detector, x_calib, batch_size)
        scale_m = float(margins[correct].abs().median()) if correct.any() else 1.0
        scale_s = float(calib_scores.std()) or 1.0
        neg = clean_scores[correct].cpu().numpy()
        results = []
        rows_of = rows_for(detector, x[:1])
        bar = progress_bar(total=len(eps_list) * len(rows_of) * n, desc="detection", unit="img", enabled=progress)
        try:
            for e in eps_list:
                rows = []
                worst = clean_ok.clone()
                for row in rows_of:
                    t1 = time.perf_counter()
                    bar.set_description(f"detection eps={e:g} {row}")
                    advs = []
                    for i in range(0, n, batch_size):
                        xb, yb = x[i:i + batch_size], y[i:i + batch_size]
                        if row == "naive":
                            atk = PGD(eps=e, steps=steps, restarts=restarts, seed=seed)
                            advs.append(atk(model, xb, yb))
                        else:
                            advs.append(adaptive_pgd(model, detector, xb, yb, eps=e, threshold=threshold,
                                                     scale_margin=scale_m, scale_score=scale_s, steps=steps,
                                                     restarts=restarts, seed=seed, views=row == VIEWS_ROW))  # fmt: skip
                        bar.update(xb.shape[0])
                    adv = torch.cat(advs)
                    wrong = _predict(model, adv, batch_size) != y
                    adv_scores = scores_of(model, detector, adv, batch_size)
                    caught = adv_scores > threshold
                    robust = clean_ok & ~(wrong & ~caught)
                    worst &= robust
                    fooled = wrong & correct
                    rows.append(DetectionRow(
                        row=row, attack=_attack_label(row, steps, detector),
                        auc=roc_auc(neg, adv_scores[fooled].cpu().numpy()),
                        detection_rate=float(caught[fooled].double().mean()) if fooled.any() else float("nan"),
                        fooled_classifier=float(wrong.double().mean()), robust_with_rejection=float(robust.double().mean()),
                        robust_examples=robust.nonzero().flatten().tolist(), seconds=time.perf_counter() - t1,
                    ))  # fmt: skip
                results.append(DetectionEps(eps=e, rows=rows, robust_with_rejection=float(worst.double().mean()),
                                            robust_examples=worst.nonzero().flatten().tolist()))  # fmt: skip
        finally:
            bar.close()
    det = {"name": detector.name, "title": detector.title, "settings": detector.settings(),
           "differentiable": detector.differentiable}  # fmt: skip
    meta = {"created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "torch": torch.__version__,
            "calibration_images": int(x_calib.shape[0]), "restarts": restarts, "seed": seed,
            "scale_margin": scale_m, "scale_score": scale_s}  # fmt: skip
    return DetectionReport(
        model=dict(model_meta or {}), detector=det, threshold=threshold, fpr_target=fpr,
        fpr_test=float((clean_scores[correct] > threshold).double().mean()) if correct.any() else float("nan"),
        n=n, clean_accuracy=float(correct.double().mean()), clean_accuracy_with_rejection=float(clean_ok.double().mean()),
        results=results, steps=steps, seconds=time.perf_counter() - t0, meta=meta,
    )  # fmt: skip
