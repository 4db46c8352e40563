"""Seeded randomness for attacks that draw from the global RNGs (foolbox, AutoAttack).

Foolbox draws its random starts and noise from torch's global generator (through eagerpy),
and AutoAttack calls ``torch.manual_seed`` itself. :func:`seeded` forks the global torch
state (CPU, and the images' CUDA device, which it also makes current) and NumPy's, seeds
them, and restores them on exit: such an attack is deterministic under its ``seed`` and
leaves the caller's random streams untouched.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch


@contextlib.contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Run the body with torch (CPU + ``device``) and NumPy seeded; restore all afterwards."""
    np_state = np.random.get_state()
    with contextlib.ExitStack() as stack:
        if device.type == "cuda":
            index = device.index if device.index is not None else torch.cuda.current_device()
            stack.enter_context(torch.cuda.device(index))  # AutoAttack seeds the *current* device
            stack.enter_context(torch.random.fork_rng(devices=[index]))
            torch.cuda.manual_seed(seed)
        else:
            stack.enter_context(torch.random.fork_rng(devices=[]))
        torch.default_generator.manual_seed(seed)
        np.random.seed(seed % 2**32)
        try:
            yield
        finally:
            np.random.set_state(np_state)
