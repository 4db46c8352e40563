"""Distributed training under ``torchrun``: the model in DistributedDataParallel.

Who this process is, its device and the collectives (:class:`~lab.core.distributed.Dist`,
``join``, ``barrier``, ``sum_over_ranks`` ...) are :mod:`lab.core.distributed`'s, shared
with the sharded evaluation. Without ``torchrun`` this is a no-op for a single process.
"""

from __future__ import annotations

import torch
from torch import nn

from lab.core.distributed import Dist


def data_parallel(model: nn.Module, device: torch.device, dd: Dist) -> nn.Module:
    """``model`` in DistributedDataParallel when there are several ranks, else ``model`` itself."""
    if dd.world <= 1:
        return model
    return nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
