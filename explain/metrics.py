"""Explanation-quality metrics: is a map faithful, stable, model-dependent, robust?

One import for everything, each metric in its own small file:

* faithfulness (:mod:`explain.metrics_faithfulness`): :func:`deletion_insertion` and
  :func:`random_map_baseline` (RISE, Petsiuk et al., 2018), :func:`infidelity` and
  :func:`sensitivity` (Yeh et al., 2019, via ``captum.metrics``);
* model dependence (:mod:`explain.metrics_sanity`): :func:`sanity_check`, the
  model-randomization test of Adebayo et al. (2018) -> :class:`SanityResult`;
* robustness (:mod:`explain.metrics_attack`): :func:`under_attack`, clean vs adversarial maps;
* similarities (:mod:`explain.metrics_similarity`): :func:`spearman`, :func:`ssim`, :func:`top_k_iou`.

``method`` arguments take an explainer name (with ``settings``), an :class:`~explain.base.Explainer`
or any callable ``fn(model, x, target) -> maps [B, 1, H, W]``. Per-image values are float tensors
[B]; reports are dataclasses with ``to_dict()`` or plain dicts, ready for JSON. Randomness is
seeded and never touches the caller's RNG.
"""

from __future__ import annotations

from explain.metrics_attack import under_attack
from explain.metrics_common import ExplainFn, MethodLike, as_explainer
from explain.metrics_faithfulness import Curves, deletion_insertion, infidelity, random_map_baseline, sensitivity
from explain.metrics_sanity import SanityResult, sanity_check
from explain.metrics_similarity import spearman, ssim, top_k_iou

__all__ = [
    "Curves", "ExplainFn", "MethodLike", "SanityResult", "as_explainer", "deletion_insertion", "infidelity",
    "random_map_baseline", "sanity_check", "sensitivity", "spearman", "ssim", "top_k_iou", "under_attack",
]  # fmt: skip
