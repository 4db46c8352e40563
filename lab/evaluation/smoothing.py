"""Randomized smoothing for L2 (Cohen, Rosenfeld and Kolter 2019, "Certified Adversarial Robustness
via Randomized Smoothing"): the smoothed classifier ``g(x) = argmax_c P(f(x + N(0, sigma^2 I)) = c)``
of a base classifier ``f`` (best trained on noisy images: ``[defense] name = "gaussian"``).

* :func:`predict` is the paper's PREDICT: ``n`` noisy copies, the two most frequent classes, and a
  two-sided binomial test at level ``alpha``; it abstains (-1) when the top class does not win it.
* :func:`certify_smoothed` is CERTIFY: ``n0`` copies choose the class, ``n`` more estimate its
  probability; ``pA`` is the one-sided ``1 - alpha`` Clopper-Pearson lower bound on it and, when
  ``pA > 1/2``, the prediction is certified constant in the L2 ball of radius
  ``sigma * Phi^-1(pA)`` with probability at least ``1 - alpha`` over the sampling. An image counts
  as certified at radius ``r`` when that class is its label and its radius is at least ``r``.

The noise is added in the lab's [0, 1] pixel space and not clipped (the certificate is about
exactly that Gaussian), the base classifier sees the noisy image through its own normalization.
Sampling is seeded per image (the same image gets the same draws wherever it is in the set).
"""

from __future__ import annotations

import datetime as _dt
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from scipy.stats import beta, binomtest, norm
from torch import nn

from lab.core.epsilon import check_eps
from lab.core.errors import LabError
from lab.core.progress import progress as progress_bar
from lab.core.rng import image_seeds
from lab.evaluation.certify import CertificationReport, CertifiedResult
from lab.models.base import check_images, frozen_eval

ABSTAIN = -1


def _counts(model: nn.Module, x: torch.Tensor, sigma: float, n: int, batch: int, k: int,
            gen: torch.Generator) -> np.ndarray:  # fmt: skip
    """Class counts [K] of ``model`` on ``n`` noisy copies of one image ``x`` [C, H, W]."""
    counts = torch.zeros(k, dtype=torch.long)
    left = n
    while left > 0:
        m = min(batch, left)
        noise = torch.randn((m, *x.shape), generator=gen, dtype=x.dtype) * sigma
        pred = model((x.unsqueeze(0) + noise.to(x.device)).float()).argmax(1).cpu()
        counts += torch.bincount(pred, minlength=k)
        left -= m
    return counts.numpy()


def lower_confidence_bound(k: int, n: int, alpha: float) -> float:
    """The one-sided ``1 - alpha`` Clopper-Pearson lower bound on a binomial proportion, ``k`` of ``n``."""
    return 0.0 if k == 0 else float(beta.ppf(alpha, k, n - k + 1))


def _check(sigma: float, n0: int, n: int, alpha: float, batch: int) -> None:
    if not sigma > 0:
        raise LabError(f"the smoothing noise sigma must be positive, got {sigma}")
    if n0 < 1 or n < 1:
        raise LabError(f"smoothing needs at least one noise sample for selection and for estimation, got {n0} and {n}")
    if not 0 < alpha < 1:
        raise LabError(f"the failure probability alpha must be in (0, 1), got {alpha}")
    if batch < 1:
        raise LabError(f"the noise batch size must be >= 1, got {batch}")


def predict(model: nn.Module, x: torch.Tensor, *, sigma: float, n: int = 1000, alpha: float = 0.001,
            batch: int = 1000, seed: int = 0) -> torch.Tensor:  # fmt: skip
    """The smoothed classifier's predictions [B] (``ABSTAIN`` = -1 where the binomial test fails)."""
    _check(sigma, 1, n, alpha, batch)
    x = check_images(x)
    out = []
    with frozen_eval(model), torch.no_grad():
        k = int(model(x[:1].float()).shape[1])
        for i, s in enumerate(image_seeds(x, seed)):
            c = _counts(model, x[i], sigma, n, batch, k, torch.Generator().manual_seed(int(s)))
            top2 = np.argsort(c)[::-1][:2]
            na, nb = int(c[top2[0]]), int(c[top2[1]])
            out.append(int(top2[0]) if binomtest(na, na + nb, 0.5).pvalue <= alpha else ABSTAIN)
    return torch.tensor(out)


def certify_smoothed(model: nn.Module, x: torch.Tensor, y: torch.Tensor, radii: Sequence[float], *, sigma: float,
                     n0: int = 100, n: int = 10_000, alpha: float = 0.001, batch: int = 1000, seed: int = 0,
                     progress: bool = True, model_meta: dict[str, Any] | None = None,
                     done: Mapping[int, tuple[int, float]] | None = None,
                     on_image: Callable[[int, int, float], None] | None = None) -> CertificationReport:  # fmt: skip
    """Certified L2 accuracy of the smoothed ``model`` at each radius of ``radii`` (CERTIFY above)
    on images ``x`` [N, C, H, W] in [0, 1] with labels ``y``. The report's meta holds each image's
    class (-1: abstained) and certified radius. Resuming: ``done`` maps the index of an image
    certified before (by the same request) to its class and radius, which are taken as they are
    (the sampling is seeded per image, so the report equals an uninterrupted run's);
    ``on_image(i, class, radius)`` is called after each image certified here."""
    _check(sigma, n0, n, alpha, batch)
    radii = check_eps(list(radii), "l2", tuple(x.shape[1:]))
    x = check_images(x)
    done = dict(done or {})
    t0 = time.perf_counter()
    classes, rads = [], []
    bar = progress_bar(total=x.shape[0], desc=f"smoothing sigma={sigma:g}", unit="img", enabled=progress)
    chunk = max(1, math.ceil(x.shape[0] / 10))  # in a log: a line per tenth of the images
    with frozen_eval(model), torch.no_grad():
        k = int(model(x[:1].float()).shape[1])
        try:
            for i, s in enumerate(image_seeds(x, seed)):
                if i % chunk == 0:
                    bar.set_description(f"smoothing sigma={sigma:g}, images {i}..{min(i + chunk, x.shape[0]) - 1}")
                if i in done:
                    c, r = done[i]
                else:
                    gen = torch.Generator().manual_seed(int(s))
                    guess = int(np.argmax(_counts(model, x[i], sigma, n0, batch, k, gen)))
                    p_a = lower_confidence_bound(int(_counts(model, x[i], sigma, n, batch, k, gen)[guess]), n, alpha)
                    c, r = (guess, sigma * float(norm.ppf(p_a))) if p_a > 0.5 else (ABSTAIN, 0.0)
                    if on_image is not None:
                        on_image(i, c, r)
                classes.append(int(c))
                rads.append(float(r))
                bar.update(1)
        finally:
            bar.close()
    correct = np.array(classes) == y.cpu().numpy()
    r_arr = np.array(rads)
    clean = float(correct.mean())
    seconds = time.perf_counter() - t0
    results = []
    for r in radii:
        ok = correct & (r_arr >= r) if r > 0 else correct
        results.append(CertifiedResult(eps=r, clean_accuracy=clean, certified_accuracy=float(ok.mean()),
                                       certified_examples=np.nonzero(ok)[0].tolist(),
                                       median_margin=float("nan"), seconds=seconds / len(radii)))  # fmt: skip
    meta = {"created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "torch": torch.__version__,
            "sigma": sigma, "n0": n0, "n_samples": n, "alpha": alpha, "seed": seed,
            "resumed_images": sum(1 for i in done if 0 <= i < x.shape[0]),
            "classes": classes, "radii": [round(v, 6) if math.isfinite(v) else None for v in rads],
            "clean_accuracy_means": "the smoothed classifier's CERTIFY prediction (abstentions count as wrong)"}  # fmt: skip
    return CertificationReport(model=dict(model_meta or {}), method="smoothing", norm="l2", eps=radii, n=x.shape[0],
                               clean_accuracy=clean, results=results, seconds=seconds, meta=meta)  # fmt: skip
