"""A sharded evaluation (``torchrun --nproc_per_node N -m lab eval ...``): which examples of
an attack call each rank attacks, and the merge that gives every rank the whole result.

Every rank holds all the evaluated images and runs the same evaluation; only the attack
calls are split (:func:`rank_batches`), and after each call every rank has every
example's outcome (:func:`merge_batches`), so the active sets, the per-image worst case,
the masking checks and the report are the same on every rank, and the same as one
process's:

* an attack whose images do not depend on one another (``batch_independent``: the lab's
  gradient attacks, whose random starts are drawn per image) is split by image: rank ``r``
  takes the ``r``-th of ``N`` contiguous, near-equal parts of the examples, in batches;
* any other attack (AutoAttack, foolbox, a plug-in: one random stream per batch, or a
  batch-wide starting-point search) is split by batch: the batches one process would form,
  dealt out in turn, so each is attacked exactly as in one process (no speed-up when there
  are fewer batches than ranks).

A LabError on one rank's share reaches every rank through the merge, so every rank fails
with the same sentence (the earliest batch's).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from lab.core.distributed import Dist, gather_objects
from lab.core.errors import LabError


@dataclass
class BatchResult:
    """What a rank found on one batch ``[start, stop)`` of an attack call's examples."""

    start: int
    fooled: torch.Tensor  # bool [stop - start]
    norms: torch.Tensor  # float32 [stop - start]
    notes: list[str] = field(default_factory=list)


def rank_batches(n: int, batch_size: int, dd: Dist, per_image: bool) -> list[tuple[int, int]]:
    """The batches ``[start, stop)`` of ``n`` examples that rank ``dd.rank`` attacks: with
    ``per_image``, its contiguous ``1/world`` part cut into batches of ``batch_size``; else
    every ``world``-th of the batches one process forms. One process: all of them."""
    if per_image and dd.world > 1:
        lo, hi = n * dd.rank // dd.world, n * (dd.rank + 1) // dd.world
        return [(s, min(s + batch_size, hi)) for s in range(lo, hi, batch_size)]
    batches = [(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]
    return batches[dd.rank :: dd.world]


def merge_batches(found: list[BatchResult], error: tuple[int, str] | None, n: int, device: torch.device,
                  dd: Dist, bar: Any = None) -> tuple[torch.Tensor, torch.Tensor, list[str]]:  # fmt: skip
    """Every rank's ``found`` put together: ``(fooled [n], norms [n], notes)`` on ``device``,
    the notes of every batch in batch order, once each. ``error``: this rank's first failing
    batch ``(start, message)``; if any rank has one, every rank raises the earliest as a
    LabError. ``bar``: advanced by the examples the other ranks attacked."""
    mine = sum(len(r.fooled) for r in found)
    if dd.world > 1:
        local = [BatchResult(r.start, r.fooled.cpu(), r.norms.cpu(), r.notes) for r in found]
        shares = gather_objects((local, error), dd)
        errors = [e for _, e in shares if e is not None]
        if errors:
            raise LabError(min(errors)[1])
        found = sorted((r for part, _ in shares for r in part), key=lambda r: r.start)
    fooled = torch.zeros(n, dtype=torch.bool, device=device)
    norms = torch.zeros(n, device=device)
    notes: list[str] = []
    for r in found:
        fooled[r.start : r.start + len(r.fooled)] = r.fooled.to(device)
        norms[r.start : r.start + len(r.norms)] = r.norms.to(device)
        notes += [m for m in r.notes if m not in notes]
    if bar is not None and dd.world > 1:
        bar.update(n - mine)
    return fooled, norms, notes
