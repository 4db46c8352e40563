"""Run an attack on a set of examples and verify what it returns, before anything counts.

:func:`run_attack_on` attacks ``x[idx]`` in batches and says which examples it fooled;
every adversarial example is first checked by :func:`verify_adversarial` (the input's
shape and device, finite, in [0, 1], inside the threat set up to :data:`VERIFY_ATOL`),
and the fooling is decided by the judged model in fp32 (:func:`predict`). Shared by the
evaluator (:mod:`lab.evaluation.engine`) and the gradient-masking checks
(:mod:`lab.evaluation.masking`). Under ``torchrun`` each rank attacks its share of the
examples and every rank gets the whole result (:mod:`lab.evaluation.shards`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from attacks import Attack
from lab.core.distributed import Dist
from lab.core.errors import LabError
from lab.evaluation.shards import BatchResult, merge_batches, rank_batches
from lab.models.predict import predict

#: slack allowed when the evaluator re-checks that an adversarial example lies in the threat
#: set: float32 rounding of ``x + delta`` (absolute, in pixel units, plus the same relative to eps)
VERIFY_ATOL = 1e-5


def verify_adversarial(attack: Attack, title: str, x: torch.Tensor, x_adv: torch.Tensor) -> torch.Tensor:
    """The perturbation norms [B] of ``x_adv`` around ``x``, after checking that every example
    is a valid answer of ``attack``: a tensor of ``x``'s shape on its device, finite, in [0, 1],
    inside the threat set up to :data:`VERIFY_ATOL`. Anything else is a LabError naming the
    attack: an attack that breaks its contract never scores a success."""
    who = f"attack {title!r}"
    if not torch.is_tensor(x_adv) or x_adv.shape != x.shape or x_adv.device != x.device:
        got = tuple(x_adv.shape) if torch.is_tensor(x_adv) else type(x_adv).__name__
        raise LabError(f"{who} returned {got} for input {tuple(x.shape)} on {x.device}; it must return images "
                       "of the input's shape and device")  # fmt: skip
    if not x_adv.is_floating_point() or not bool(torch.isfinite(x_adv).all()):
        raise LabError(f"{who} returned non-finite or non-float images ({x_adv.dtype})")
    lo, hi = float(x_adv.min()), float(x_adv.max())
    if lo < -VERIFY_ATOL or hi > 1 + VERIFY_ATOL:
        raise LabError(f"{who} returned pixels outside [0, 1] (range {lo:.6g}..{hi:.6g})")
    norms = attack.threat.norm((x_adv - x).float())
    limit = attack.eps * (1 + VERIFY_ATOL) + VERIFY_ATOL
    if len(norms) and float(norms.max()) > limit:
        i = int(norms.argmax())
        raise LabError(f"{who} returned example {i} at {attack.norm} distance {float(norms[i]):.6g} from its input, "
                       f"outside the threat set of radius {attack.eps:g}")  # fmt: skip
    return norms


def run_attack_on(model: nn.Module, attack: Attack, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor,
                  batch_size: int, bar: Any = None, judge: nn.Module | None = None, title: str | None = None,
                  ranks: Dist | None = None) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """Attack ``x[idx]`` in batches: ``(fooled mask over idx, perturbation norms over idx)``.

    The attack runs on ``model``; ``judge`` (default: ``model``) decides whether the
    result fools: for a defended model the attacks may see a view of it (the bare
    classifier, a BPDA or EOT version) while the defended model itself is judged, in fp32.
    Every result is verified first (:func:`verify_adversarial`). Afterwards ``attack.notes``
    holds what the attack flagged on any batch. ``ranks``: under ``torchrun``, this rank
    attacks its share only and every rank returns the whole result (:mod:`lab.evaluation.shards`).
    """
    dd = ranks or Dist()
    judge = model if judge is None else judge
    title = title or attack.name
    found: list[BatchResult] = []
    error: tuple[int, str] | None = None
    for start, stop in rank_batches(len(idx), batch_size, dd, attack.batch_independent):
        b = idx[start:stop]
        xb, yb = x[b], y[b]
        try:
            x_adv = attack(model, xb, yb)
            with torch.no_grad():
                norms = verify_adversarial(attack, title, xb, x_adv)
                fooled = predict(judge, x_adv, batch_size) != yb
        except LabError as exc:
            if dd.world <= 1:
                raise
            error = (start, str(exc))  # every rank raises the earliest one after the merge
            break
        found.append(BatchResult(start, fooled, norms, list(attack.notes)))
        if bar is not None:
            bar.update(len(b))
    fooled_all, norms_all, attack.notes = merge_batches(found, error, len(idx), x.device, dd, bar)
    return fooled_all, norms_all
