"""Seeded randomness that leaves the caller's random streams untouched.

Attacks and explainers that draw from the global generators (foolbox's random starts,
AutoAttack's own ``torch.manual_seed``, captum's noise tunnels and baselines) run inside
:func:`seeded`: deterministic under their ``seed``, and the caller's torch (CPU and the
device's), NumPy and ``random`` states are restored afterwards.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

import numpy as np
import torch


@contextlib.contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Run the block with torch (CPU and ``device``), NumPy and ``random`` seeded with ``seed``.

    A CUDA ``device`` is also made the current one inside the block (AutoAttack seeds the
    *current* device). Every state is restored on exit.
    """
    np_state, py_state = np.random.get_state(), random.getstate()
    with contextlib.ExitStack() as stack:
        if device.type == "cuda":
            index = device.index if device.index is not None else torch.cuda.current_device()
            stack.enter_context(torch.cuda.device(index))
            stack.enter_context(torch.random.fork_rng(devices=[index]))
            torch.cuda.manual_seed(seed)
        else:
            stack.enter_context(torch.random.fork_rng(devices=[]))
        torch.default_generator.manual_seed(seed)
        np.random.seed(seed % 2**32)
        random.seed(seed)
        try:
            yield
        finally:
            np.random.set_state(np_state)
            random.setstate(py_state)
