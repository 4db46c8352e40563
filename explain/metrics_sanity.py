"""The model-randomization sanity check of Adebayo et al. (2018), "Sanity Checks for Saliency Maps".

A method whose maps barely change when the model's weights are replaced by random ones is
explaining the image, not the model. :func:`sanity_check` copies the model
(``copy.deepcopy``; the original is never touched), re-initializes the parameters of its
layers from the top (output) layer down, and compares the trained model's maps with each
randomized stage's: Spearman rank correlation of ``|map|`` and SSIM of the maps normalized to
[0, 1], per image and averaged. ``layers="cascade"`` randomizes cumulatively (stage i = the top
i + 1 layers); ``"independent"`` randomizes one layer at a time and adds a final stage with
every layer randomized. The check passes when the mean Spearman correlation after full
randomization is below ``threshold``.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from explain.base import TargetLike, check_images, model_device
from explain.metrics_common import MethodLike, as_explainer, method_name, targets
from explain.metrics_similarity import spearman, ssim
from lab.core.errors import LabError
from lab.core.rng import seeded

log = logging.getLogger(__name__)

MODES = ("cascade", "independent")


@dataclass
class SanityResult:
    """Similarity of the trained model's maps to each randomized stage's (means over images)."""

    method: str
    mode: str
    stages: list[str]  # what is randomized at each stage ("classifier.3", ..., or "all")
    spearman: list[float]  # mean Spearman correlation of |map| per stage, in [-1, 1]
    ssim: list[float]  # mean SSIM per stage, in [-1, 1]
    spearman_per_image: list[list[float]] = field(repr=False)  # [stage][image]
    ssim_per_image: list[list[float]] = field(repr=False)
    threshold: float
    passed: bool  # mean Spearman after full randomization < threshold

    @property
    def final_spearman(self) -> float:
        return self.spearman[-1]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def randomizable_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Modules owning parameters directly, in registration (input-to-output) order."""
    return [(name, m) for name, m in model.named_modules() if any(True for _ in m.parameters(recurse=False))]


def reinitialize(module: nn.Module) -> None:
    """Fresh random parameters: ``reset_parameters()`` when the module has it, N(0, 0.01) otherwise."""
    reset = getattr(module, "reset_parameters", None)
    if callable(reset):
        reset()
        return
    with torch.no_grad():
        for p in module.parameters(recurse=False):
            p.normal_(0.0, 0.01)


def sanity_check(model: nn.Module, x: torch.Tensor, method: MethodLike = "saliency", target: TargetLike = None, *,
                 settings: Mapping[str, Any] | None = None, layers: str = "cascade", threshold: float = 0.5,
                 seed: int = 0) -> SanityResult:  # fmt: skip
    """Run the model-randomization test for ``method`` on images ``x`` [B, C, H, W].

    ``target`` None explains the trained model's prediction, and the same classes are explained
    at every stage. Re-initialization is seeded (``seed``); the caller's RNG is untouched.
    """
    check_images(x)
    if layers not in MODES:
        raise LabError(f"layers must be one of {', '.join(MODES)}, got {layers!r}")
    fn = as_explainer(method, settings)
    names = [n for n, _ in randomizable_layers(model)][::-1]  # top layer first
    if not names:
        raise LabError("the model has no parameters to randomize")
    device = model_device(model)
    x = x.detach()
    t = targets(model, x, target)
    reference = fn(model, x, t)

    stages: list[str] = []
    rho: list[torch.Tensor] = []
    sim: list[torch.Tensor] = []

    def compare(stage: str, randomized: nn.Module) -> None:
        maps = fn(randomized, x, t)
        stages.append(stage)
        rho.append(spearman(reference, maps))
        sim.append(ssim(reference, maps))
        log.debug("sanity %s: randomized %s, spearman %.3f", method_name(method), stage, float(rho[-1].mean()))

    with seeded(seed, device):
        if layers == "cascade":
            work = copy.deepcopy(model)
            modules = dict(work.named_modules())
            for name in names:
                reinitialize(modules[name])
                compare(name, work)
        else:
            for name in names:
                work = copy.deepcopy(model)
                reinitialize(dict(work.named_modules())[name])
                compare(name, work)
            work = copy.deepcopy(model)
            modules = dict(work.named_modules())
            for name in names:
                reinitialize(modules[name])
            compare("all", work)
    means = [float(r.mean()) for r in rho]
    return SanityResult(
        method=method_name(method), mode=layers, stages=stages, spearman=means, ssim=[float(s.mean()) for s in sim],
        spearman_per_image=[r.tolist() for r in rho], ssim_per_image=[s.tolist() for s in sim],
        threshold=float(threshold), passed=bool(means[-1] < threshold),
    )  # fmt: skip
