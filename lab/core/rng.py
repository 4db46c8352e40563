"""Seeded randomness that leaves the caller's random streams untouched.

Attacks and explainers that draw from the global generators (foolbox's random starts,
AutoAttack's own ``torch.manual_seed``, captum's noise tunnels and baselines) run inside
:func:`seeded`: deterministic under their ``seed``, and the caller's torch (CPU and the
device's), NumPy and ``random`` states are restored afterwards.

The lab's own random starts draw from one stream *per image* (:func:`image_generators`),
seeded by a hash of the attack's seed, a stream number (the restart) and the image's exact
pixels: an image gets the same noise whatever batch it is in and wherever in the batch, so
an evaluation split across ranks, or batched differently, attacks every image the same way.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import random
import struct
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


#: the image hash is a pair of random linear forms over the pixels' float32 bit patterns, modulo this prime
_PRIME = 2**31 - 1
#: pixels hashed at once (memory of one chunk: 2 x 8 bytes per pixel)
_HASH_CHUNK = 1 << 22


@functools.lru_cache(maxsize=8)
def _hash_weights(d: int, device: torch.device) -> torch.Tensor:
    """Two fixed pseudo-random weights in [1, p) per pixel position, [2, d] int64 on ``device``."""
    g = torch.Generator().manual_seed(0x1AB5EED)
    return torch.randint(1, _PRIME, (2, d), generator=g, dtype=torch.int64).to(device)


def image_seeds(x: torch.Tensor, seed: int, stream: int = 0) -> list[int]:
    """One 63-bit seed per image of ``x`` [B, ...]: a hash of ``seed``, ``stream`` and the image's
    exact pixel values (their float32 bit patterns). The same image gives the same seed in
    any batch, at any position and on any device; a different image (or stream) another one."""
    b = x.shape[0]
    if b == 0:
        return []
    bits = x.detach().reshape(b, -1).to(torch.float32).contiguous().view(torch.int32).to(torch.int64)
    bits = (bits & 0xFFFFFFFF) % _PRIME  # < 2**31, so a product with a weight fits in int64
    w = _hash_weights(bits.shape[1], bits.device)
    rows = max(1, _HASH_CHUNK // bits.shape[1])
    parts = [((bits[i : i + rows, None, :] * w) % _PRIME).sum(-1) % _PRIME for i in range(0, b, rows)]
    keys = torch.cat(parts).tolist()
    out = []
    for h1, h2 in keys:
        data = struct.pack("<QQQQ", seed % 2**64, stream % 2**64, h1, h2)
        out.append(int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little") >> 1)
    return out


def image_generators(x: torch.Tensor, seed: int, stream: int = 0) -> list[torch.Generator]:
    """One generator on ``x``'s device per image of ``x`` [B, ...], seeded by :func:`image_seeds`."""
    return [torch.Generator(device=x.device).manual_seed(s) for s in image_seeds(x, seed, stream)]
