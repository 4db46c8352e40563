"""Distributed training under ``torchrun``: who this process is, its device, and the few
collectives the loop needs. Without ``torchrun`` (``WORLD_SIZE`` unset or 1) everything
here is a no-op for a single process of rank 0.

DistributedDataParallel over NCCL on GPUs (one per ``LOCAL_RANK``) and gloo on CPU; rank 0
(:attr:`Dist.main`) writes the files and logs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass
class Dist:
    """This process's place in the job: ``rank`` of ``world`` processes, ``local_rank`` on its host."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Rank 0: the process that writes checkpoints and logs progress."""
        return self.rank == 0


def dist_from_env() -> Dist:
    """The job as ``torchrun`` describes it (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    return Dist(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))


def join(dd: Dist, device_name: str) -> torch.device:
    """This rank's device (``cuda:LOCAL_RANK``, or the CPU) after joining the process group:
    NCCL on GPUs, gloo on CPU. ``device_name``: the recipe's ``auto | cpu | cuda | cuda:N``."""
    if device_name == "auto":
        device_name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(f"cuda:{dd.local_rank}") if device_name.startswith("cuda") else torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def data_parallel(model: nn.Module, device: torch.device, dd: Dist) -> nn.Module:
    """``model`` in DistributedDataParallel when there are several ranks, else ``model`` itself."""
    if dd.world <= 1:
        return model
    return nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def barrier(dd: Dist) -> None:
    """Wait for every rank (no-op for one process)."""
    if dd.world > 1:
        dist.barrier()


def sum_over_ranks(t: torch.Tensor, dd: Dist) -> torch.Tensor:
    """``t`` summed over every rank, in place (unchanged for one process)."""
    if dd.world > 1:
        dist.all_reduce(t)
    return t


def mean_over_ranks(value: float, dd: Dist, device: torch.device) -> float:
    """The mean of ``value`` over every rank, so that each rank decides the same."""
    if dd.world <= 1:
        return value
    t = torch.tensor(value, device=device, dtype=torch.float64)
    dist.all_reduce(t)
    return float(t) / dd.world


def leave(dd: Dist) -> None:
    """Leave the process group at the end of training (no-op for one process)."""
    if dd.world > 1 and dist.is_initialized():
        dist.destroy_process_group()
