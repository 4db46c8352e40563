"""Faithfulness of attribution maps: deletion / insertion, infidelity, sensitivity.

* :func:`deletion_insertion`: Petsiuk, Das & Saenko (2018), "RISE: Randomized Input Sampling
  for Explanation of Black-box Models". Pixels are ranked by map value (highest first) and
  changed in ``steps`` equal chunks while the target-class softmax probability is recorded.
  As in the paper, *deletion* sets pixels to a constant ``baseline`` (0 = black) and
  *insertion* starts from a Gaussian-blurred copy of the image (11x11, sigma 5) and puts the
  original pixels back. Areas under the curves by the trapezoid rule over the fraction of
  pixels changed in [0, 1]: lower deletion AUC and higher insertion AUC mean a better map.
  :func:`random_map_baseline` gives the same numbers for a seeded random map.
* :func:`infidelity`: Yeh et al. (2019), "On the (In)fidelity and Sensitivity of
  Explanations", ``captum.metrics.infidelity`` with seeded Gaussian noise in pixel units.
* :func:`sensitivity`: the same paper's max-sensitivity, ``captum.metrics.sensitivity_max``
  with seeded uniform noise of radius ``radius`` (pixel units, clamped to [0, 1]).

Maps are [B, 1, H, W] (or [B, C, H, W], summed over channels to rank pixels); a pixel is a
spatial location, all its channels change together. Per-image results are float tensors [B].
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from captum.metrics import infidelity as captum_infidelity
from captum.metrics import sensitivity_max
from torch import nn

from explain.base import TargetLike, check_images, frozen_eval, model_device
from explain.metrics_common import MethodLike, as_explainer, probabilities, targets
from lab.core.errors import LabError
from lab.core.rng import seeded


@dataclass
class Curves:
    """Deletion and insertion curves: probability of the target class after each step."""

    fractions: list[float]  # steps + 1 values from 0 to 1: fraction of pixels deleted / inserted
    deletion: torch.Tensor  # [B, steps + 1]
    insertion: torch.Tensor  # [B, steps + 1]

    def to_dict(self) -> dict[str, Any]:
        return {"fractions": self.fractions, "deletion": self.deletion.tolist(), "insertion": self.insertion.tolist()}


def gaussian_blur(x: torch.Tensor, *, size: int = 11, sigma: float = 5.0) -> torch.Tensor:
    """Depthwise Gaussian blur of images [B, C, H, W] (replicate padding); RISE's insertion start."""
    c = x.shape[1]
    g = torch.arange(size, dtype=torch.float32, device=x.device) - (size - 1) / 2
    g = torch.exp(-(g**2) / (2 * sigma**2))
    g = g / g.sum()
    k = (g[:, None] * g[None, :]).expand(c, 1, size, size)
    p = size // 2
    return F.conv2d(F.pad(x.float(), (p, p, p, p), mode="replicate"), k, groups=c).to(x.dtype)


def _check_steps(steps: int, batch_size: int) -> None:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise LabError(f"steps must be an integer >= 1, got {steps!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise LabError(f"batch_size must be an integer >= 1, got {batch_size!r}")


def deletion_insertion(model: nn.Module, x: torch.Tensor, maps: torch.Tensor, target: TargetLike = None, *,
                       steps: int = 20, baseline: float = 0.0, insertion_start: str = "blur", blur_sigma: float = 5.0,
                       batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor, Curves]:  # fmt: skip
    """Deletion and insertion AUCs [B] (each in [0, 1]) and the curves, for ``maps`` of ``x``.

    ``target`` None uses the model's prediction on ``x``. ``insertion_start``: ``"blur"`` (the
    paper's) or ``"baseline"`` (the same constant as deletion). Model calls run without
    gradients in eval mode, ``batch_size`` images at a time.
    """
    check_images(x)
    _check_steps(steps, batch_size)
    if maps.ndim != 4 or maps.shape[0] != x.shape[0] or maps.shape[-2:] != x.shape[-2:]:
        raise LabError(f"maps must be shaped [B, 1, H, W] like the images {tuple(x.shape)}, got {tuple(maps.shape)}")
    if insertion_start not in ("blur", "baseline"):
        raise LabError(f"insertion_start must be 'blur' or 'baseline', got {insertion_start!r}")
    if not 0.0 <= float(baseline) <= 1.0:
        raise LabError(f"baseline must be a pixel value in [0, 1], got {baseline!r}")
    b, _, h, w = x.shape
    n = h * w
    t = targets(model, x, target, batch_size)
    x = x.detach().float().cpu()
    score = maps.detach().float().cpu().sum(1).flatten(1)  # [B, HW]
    order = score.argsort(dim=1, descending=True, stable=True)
    rank = torch.empty_like(order).scatter_(1, order, torch.arange(n).expand(b, n))  # rank of each pixel
    counts = [round(i * n / steps) for i in range(steps + 1)]
    start = gaussian_blur(x, sigma=blur_sigma) if insertion_start == "blur" else torch.full_like(x, float(baseline))
    deleted = torch.full_like(x, float(baseline))
    per_chunk = max(1, batch_size // b)  # steps evaluated per model batch
    del_curve, ins_curve = [], []
    for i in range(0, steps + 1, per_chunk):
        ks = torch.tensor(counts[i : i + per_chunk])
        changed = (rank[None] < ks[:, None, None]).view(len(ks), b, 1, h, w)  # [S, B, 1, H, W]
        xd = torch.where(changed, deleted[None], x[None]).flatten(0, 1)
        xi = torch.where(changed, x[None], start[None]).flatten(0, 1)
        tt = t.repeat(len(ks))
        del_curve.append(probabilities(model, xd, tt, batch_size).view(len(ks), b))
        ins_curve.append(probabilities(model, xi, tt, batch_size).view(len(ks), b))
    fractions = [c / n for c in counts]
    dc, ic = torch.cat(del_curve).T.contiguous(), torch.cat(ins_curve).T.contiguous()
    fx = torch.tensor(fractions)
    return torch.trapezoid(dc, fx, dim=1), torch.trapezoid(ic, fx, dim=1), Curves(fractions, dc, ic)


def random_map_baseline(model: nn.Module, x: torch.Tensor, target: TargetLike = None, *, seed: int = 0,
                        **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor, Curves]:  # fmt: skip
    """:func:`deletion_insertion` with a seeded uniform random map: the "better than random" bar."""
    g = torch.Generator().manual_seed(int(seed))
    maps = torch.rand(x.shape[0], 1, *x.shape[-2:], generator=g)
    return deletion_insertion(model, x, maps, target, **kwargs)


def _map_like(maps: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    if maps.shape[1] == x.shape[1]:
        return maps
    return maps.expand(-1, x.shape[1], -1, -1)  # a reduced map is shared by every channel


def infidelity(model: nn.Module, x: torch.Tensor, method: MethodLike = "saliency", target: TargetLike = None, *,
               settings: Mapping[str, Any] | None = None, maps: torch.Tensor | None = None, noise_std: float = 0.1,
               n_perturb_samples: int = 10, normalize: bool = True, seed: int = 0,
               max_examples_per_batch: int | None = None) -> torch.Tensor:  # fmt: skip
    """Infidelity per image [B] (>= 0, lower is better) of ``method``'s maps (or the given ``maps``).

    Perturbations are Gaussian noise of standard deviation ``noise_std`` (pixel units), the
    perturbed images clamped to [0, 1] (the perturbation is the clamped difference).
    ``normalize`` rescales the maps by the optimal scalar first (captum's option), so the
    number does not depend on the map's scale. Seeded; the caller's RNG is left untouched.
    """
    check_images(x)
    if not noise_std > 0:
        raise LabError(f"noise_std must be > 0 (pixel units), got {noise_std!r}")
    device = model_device(model)
    xin = x.detach().float().to(device)
    t = targets(model, xin, target).to(device)
    with seeded(seed, device):
        if maps is None:
            maps = as_explainer(method, settings)(model, xin, t)
        attr = _map_like(maps.detach().float().to(device), xin)

        def perturb(inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            noisy = (inputs + noise_std * torch.randn_like(inputs)).clamp(0.0, 1.0)
            return inputs - noisy, noisy

        with frozen_eval(model), torch.no_grad():
            out = captum_infidelity(model, perturb, xin, attr, target=t, n_perturb_samples=n_perturb_samples,
                                    max_examples_per_batch=max_examples_per_batch, normalize=normalize)  # fmt: skip
    return out.detach().float().cpu()


def sensitivity(model: nn.Module, x: torch.Tensor, method: MethodLike = "saliency", target: TargetLike = None, *,
                settings: Mapping[str, Any] | None = None, radius: float = 0.02, n_perturb_samples: int = 4,
                norm_ord: str = "fro", seed: int = 0, max_examples_per_batch: int | None = None) -> torch.Tensor:  # fmt: skip
    """Max-sensitivity per image [B] (>= 0, lower is better): the largest relative change of the
    map, ``||map(x') - map(x)|| / ||map(x)||``, over ``n_perturb_samples`` images ``x'`` with
    uniform noise in [-radius, radius] (pixel units, clamped to [0, 1]). ``target`` None fixes
    the prediction on ``x`` for every perturbed copy. Seeded; the caller's RNG is untouched.
    """
    check_images(x)
    if not radius > 0:
        raise LabError(f"radius must be > 0 (pixel units), got {radius!r}")
    device = model_device(model)
    xin = x.detach().float().to(device)
    t = targets(model, xin, target).to(device)
    fn = as_explainer(method, settings)

    def explanation(inputs: torch.Tensor | tuple[torch.Tensor, ...], target: torch.Tensor) -> tuple[torch.Tensor]:
        xs = inputs[0] if isinstance(inputs, tuple) else inputs  # captum passes, and expects, 1-tuples
        return (_map_like(fn(model, xs, target).float(), xs),)

    def perturb(inputs: torch.Tensor, perturb_radius: float) -> torch.Tensor:
        noise = torch.empty_like(inputs).uniform_(-perturb_radius, perturb_radius)
        return (inputs + noise).clamp(0.0, 1.0)

    with seeded(seed, device):
        out = sensitivity_max(explanation, xin, perturb_func=perturb, perturb_radius=radius,
                              n_perturb_samples=n_perturb_samples, norm_ord=norm_ord,
                              max_examples_per_batch=max_examples_per_batch, target=t)  # fmt: skip
    return out.detach().float().cpu()
