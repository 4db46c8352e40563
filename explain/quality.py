"""One quality table per model: every metric of :mod:`explain.metrics` for every method.

``quality_table(model, x, y, ["saliency", "gradcam"], attack="pgd", eps=0.3)`` returns, per
method, the mean deletion and insertion AUC next to a random map's (RISE), infidelity and
sensitivity (captum), the model-randomization sanity check (Adebayo et al.) and, with an
attack, the clean-vs-adversarial map similarity. This is what ``lab explain --metrics``
writes to ``metrics.json``; it is plain data, ready for JSON and for the dashboard.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from explain.base import EXPLAINERS, Explainer
from explain.metrics import deletion_insertion, infidelity, random_map_baseline, sanity_check, sensitivity, under_attack


def _mean(t: torch.Tensor) -> float:
    return float(t.float().mean())


def build_explainer(name: str, settings: Mapping[str, Any] | None = None, quick: bool = False) -> Explainer:
    cls = EXPLAINERS.get(name)
    return cls(**{**(cls.quick_settings if quick else {}), **dict(settings or {})})


def quality_table(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    methods: Sequence[str],
    *,
    method_settings: Mapping[str, Mapping[str, Any]] | None = None,
    quick: bool = False,
    attack: str | None = None,
    eps: float | None = None,
    norm: str = "linf",
    steps: int = 20,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """Per method: ``deletion_auc``, ``insertion_auc`` (and the random map's), ``infidelity``,
    ``sensitivity``, ``sanity`` (passed, final Spearman), and ``under_attack`` when ``attack``
    is given. ``x``: [B, C, H, W] in [0, 1]; ``y``: [B] labels (used by the attack)."""
    rand_del, rand_ins, _ = random_map_baseline(model, x, None, seed=seed, steps=steps)
    table: dict[str, dict[str, Any]] = {}
    for name in methods:
        explainer = build_explainer(name, (method_settings or {}).get(name), quick)
        maps = explainer(model, x)
        dele, ins, _ = deletion_insertion(model, x, maps, None, steps=steps)
        sanity = sanity_check(model, x, explainer, seed=seed)
        row: dict[str, Any] = {
            "deletion_auc": _mean(dele),
            "insertion_auc": _mean(ins),
            "random_deletion_auc": _mean(rand_del),
            "random_insertion_auc": _mean(rand_ins),
            "infidelity": _mean(infidelity(model, x, explainer, maps=maps, seed=seed)),
            "sensitivity": _mean(sensitivity(model, x, explainer, seed=seed)),
            "sanity": {"passed": sanity.passed, "final_spearman": sanity.final_spearman},
        }
        if attack is not None and eps is not None:
            ua = under_attack(model, x, y, explainer, attack=attack, eps=eps, attack_settings={"norm": norm})
            row["under_attack"] = {k: ua["mean"][k] for k in ("spearman", "ssim", "top_k_iou")}
            row["under_attack"].update(clean_accuracy=ua["clean_accuracy"], adv_accuracy=ua["adv_accuracy"])
        table[name] = row
    return table
