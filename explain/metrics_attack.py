"""Explanations under attack: how much an attribution map moves when the image is attacked.

In the spirit of Ghorbani, Abid & Zou (2019), "Interpretation of Neural Networks Is Fragile":
:func:`under_attack` attacks ``x`` with one of the lab's attacks, explains the clean and the
adversarial images with the same method, and compares the two maps per image: Spearman rank
correlation of ``|map|``, SSIM of the [0, 1]-normalized maps, and top-k intersection over union.
Any :class:`~lab.models.LabModel` works, so the same call compares a standard, an
adversarially trained and a denoised model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from attacks import ATTACKS
from explain.base import check_images
from explain.metrics_common import MethodLike, as_explainer, method_name, predictions
from explain.metrics_similarity import spearman, ssim, top_k_iou
from lab.core.errors import LabError

EXPLAIN_TARGETS = ("predicted", "label")


def under_attack(model: nn.Module, x: torch.Tensor, y: torch.Tensor, method: MethodLike = "saliency", *,
                 settings: Mapping[str, Any] | None = None, attack: str = "pgd", eps: float = 0.1,
                 attack_settings: Mapping[str, Any] | None = None, top_k: float = 0.1,
                 explain_target: str = "predicted") -> dict[str, Any]:  # fmt: skip
    """Compare ``method``'s maps of ``x`` and of ``ATTACKS.get(attack)(eps=eps, **attack_settings)(model, x, y)``.

    ``explain_target``: ``"predicted"`` explains each image's own prediction (what a user of the
    dashboard sees), ``"label"`` explains the true class ``y`` in both. Returns a JSON-ready dict:
    per-image lists and means of ``spearman`` ([-1, 1]), ``ssim`` ([-1, 1]) and ``top_k_iou``
    ([0, 1]), the clean and adversarial predictions and accuracies, and the settings used.
    """
    check_images(x)
    if explain_target not in EXPLAIN_TARGETS:
        raise LabError(f"explain_target must be one of {', '.join(EXPLAIN_TARGETS)}, got {explain_target!r}")
    y = torch.as_tensor(y).to(torch.int64).reshape(-1)
    if y.shape[0] != x.shape[0]:
        raise LabError(f"y must hold one label per image ({x.shape[0]}), got {y.shape[0]}")
    fn = as_explainer(method, settings)
    attacker = ATTACKS.get(attack)(eps=eps, **dict(attack_settings or {}))
    x = x.detach()
    x_adv = attacker(model, x, y.to(x.device))
    clean_pred, adv_pred = predictions(model, x), predictions(model, x_adv)
    t_clean, t_adv = (clean_pred, adv_pred) if explain_target == "predicted" else (y.cpu(), y.cpu())
    m_clean, m_adv = fn(model, x, t_clean), fn(model, x_adv, t_adv)
    scores = {"spearman": spearman(m_clean, m_adv), "ssim": ssim(m_clean, m_adv),
              "top_k_iou": top_k_iou(m_clean, m_adv, top_k=top_k)}  # fmt: skip
    yc = y.cpu()
    return {
        "method": method_name(method),
        "attack": attacker.config() if hasattr(attacker, "config") else {"name": attack, "eps": eps},
        "eps": float(eps),
        "top_k": float(top_k),
        "explain_target": explain_target,
        **{k: v.tolist() for k, v in scores.items()},
        "mean": {k: float(v.mean()) for k, v in scores.items()},
        "label": yc.tolist(),
        "clean_pred": clean_pred.tolist(),
        "adv_pred": adv_pred.tolist(),
        "clean_accuracy": float((clean_pred == yc).double().mean()),
        "adv_accuracy": float((adv_pred == yc).double().mean()),
    }
