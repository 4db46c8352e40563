"""Several processes under ``torchrun``: who this process is, its device, and the few
collectives that training and evaluation need. Without ``torchrun`` (``WORLD_SIZE`` unset
or 1) everything here is a no-op for a single process of rank 0.

NCCL on GPUs (one per ``LOCAL_RANK``) and gloo on CPU; rank 0 (:attr:`Dist.main`) writes
the files and logs. Training wraps its model in DistributedDataParallel
(:mod:`lab.training.distributed`); evaluation splits the attacked examples across ranks
and gathers what each found (:mod:`lab.evaluation.shards`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from lab.core.errors import LabError
from lab.core.runtime import pick_device


@dataclass(frozen=True)
class Dist:
    """This process's place in the job: ``rank`` of ``world`` processes, ``local_rank`` on its host."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Rank 0: the process that writes files and logs progress."""
        return self.rank == 0


def dist_from_env() -> Dist:
    """The job as ``torchrun`` describes it (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    return Dist(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))


def join(dd: Dist, device_name: str) -> torch.device:
    """This rank's device after joining the process group (NCCL on GPUs, gloo on CPU).

    ``device_name``: ``auto | cpu | cuda | cuda:N``, checked as :func:`lab.core.runtime.pick_device`
    does (a LabError for a GPU the machine lacks). With several ranks a CUDA device is
    ``cuda:LOCAL_RANK`` (made the current device; a LabError when the host has fewer GPUs than
    processes); with one, ``device_name``'s device and no group.
    """
    device = pick_device(device_name)
    if dd.world <= 1:
        return device
    if device.type == "cuda":
        per_host = int(os.environ.get("LOCAL_WORLD_SIZE", dd.world))
        if per_host > torch.cuda.device_count():  # the same sentence on every rank
            raise LabError(f"{per_host} processes per host need one GPU each, but this machine has "
                           f"{torch.cuda.device_count()}; start at most that many (torchrun --nproc_per_node)")  # fmt: skip
        device = torch.device(f"cuda:{dd.local_rank}")
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


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


def gather_objects(obj: Any, dd: Dist) -> list[Any]:
    """Every rank's ``obj`` (picklable; keep tensors on the CPU), in rank order, on every rank
    (``[obj]`` for one process)."""
    if dd.world <= 1:
        return [obj]
    out: list[Any] = [None] * dd.world
    dist.all_gather_object(out, obj)
    return out


def leave(dd: Dist) -> None:
    """Leave the process group at the end of the job (no-op for one process)."""
    if dd.world > 1 and dist.is_initialized():
        dist.destroy_process_group()
