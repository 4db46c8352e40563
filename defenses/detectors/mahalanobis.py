"""The Mahalanobis detector (Lee, Lee, Lee and Shin 2018, "A Simple Unified Framework for Detecting
Out-of-Distribution Samples and Adversarial Attacks"): class-conditional Gaussians with one shared
covariance fitted to the penultimate activations (the input of the model's last ``Linear``) of
clean training images; the score is the Mahalanobis distance to the closest class mean,
``min_c (f - mu_c)^T Sigma^-1 (f - mu_c)``. This is the paper's single-layer score without its
input pre-processing or the layer ensemble (a logistic regression fitted on adversarial examples,
which would tie the detector to one attack). Differentiable.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from defenses.detectors.base import DETECTORS, Detector
from lab.core.errors import LabError
from lab.core.settings import positive
from lab.models.base import frozen_eval


def _last_linear(model: nn.Module) -> nn.Linear:
    found = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not found:
        raise LabError(f"the mahalanobis detector needs a model whose last layer is a Linear; "
                       f"{type(model).__name__} has none")  # fmt: skip
    return found[-1]


@contextmanager
def _features(model: nn.Module) -> Iterator[list[torch.Tensor]]:
    """The inputs of the model's last Linear layer, recorded during the forwards inside (hook released)."""
    seen: list[torch.Tensor] = []
    handle = _last_linear(model).register_forward_pre_hook(lambda mod, inp: seen.append(inp[0].flatten(1)))
    try:
        yield seen
    finally:
        handle.remove()


@DETECTORS.register("mahalanobis")
class Mahalanobis(Detector):
    """Settings: ``shrinkage`` (added to the covariance's diagonal, relative to its mean variance, so
    the inverse exists)."""

    title = "Mahalanobis distance of penultimate activations (Lee et al. 2018)"

    def __init__(self, *, shrinkage: float = 0.01) -> None:
        super().__init__()
        self.shrinkage = float(positive("shrinkage", shrinkage))
        self.register_buffer("means", torch.zeros(0))
        self.register_buffer("precision", torch.zeros(0))

    means: torch.Tensor
    precision: torch.Tensor

    def fit(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 500) -> None:
        with frozen_eval(model), torch.no_grad(), _features(model) as seen:
            for i in range(0, x.shape[0], batch_size):
                model(x[i:i + batch_size])
        f = torch.cat(seen).double()
        classes = int(y.max()) + 1
        means = torch.stack([f[y == c].mean(0) if (y == c).any() else torch.zeros(f.shape[1], dtype=f.dtype)
                             for c in range(classes)])  # fmt: skip
        centred = f - means[y]
        cov = centred.T @ centred / f.shape[0]
        cov += torch.eye(cov.shape[0], dtype=cov.dtype) * self.shrinkage * cov.diagonal().mean().clamp(min=1e-12)
        self.means = means.float()
        self.precision = torch.linalg.inv(cov).float()

    def score(self, model: nn.Module, x: torch.Tensor, *, bpda: bool = False) -> torch.Tensor:
        if self.means.numel() == 0:
            raise LabError("the mahalanobis detector is not fitted: call fit(model, x, y) on clean training images")
        with _features(model) as seen:
            model(x)
        f = seen[-1].float()
        d = f.unsqueeze(1) - self.means.to(f.device).unsqueeze(0)  # [B, K, D]
        m = torch.einsum("bkd,de,bke->bk", d, self.precision.to(f.device), d)
        return m.min(1).values
