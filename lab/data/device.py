"""Small datasets held on the training device as uint8, batched and augmented there.

For MNIST-sized data a DataLoader's per-item collate and worker round trips cost more
than they save. ``DeviceData`` keeps the whole split as one uint8 tensor on the device
(60k MNIST images are 47 MB), draws a seeded permutation per epoch, and converts and
augments a whole batch at once: random crop with padding and horizontal flip are two
gathers on the device, not a Python loop.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from lab.data.pixels import to_float


class DeviceData:
    """One split on ``device``: ``x`` uint8 [N, C, H, W], ``y`` int64 [N]."""

    def __init__(self, x: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor, device: torch.device | str):
        self.device = torch.device(device)
        self.x = torch.as_tensor(x).to(self.device)
        self.y = torch.as_tensor(y).to(self.device, torch.int64)
        if self.x.dtype != torch.uint8 or self.x.ndim != 4:
            raise ValueError(f"DeviceData needs uint8 images [N,C,H,W], got {self.x.dtype} {tuple(self.x.shape)}")
        if len(self.x) != len(self.y):
            raise ValueError(f"{len(self.x)} images but {len(self.y)} labels")

    def __len__(self) -> int:
        return len(self.y)

    def permutation(self, seed: int, epoch: int) -> torch.Tensor:
        """The epoch's order: a function of (seed, epoch) only, so a resumed run sees the same."""
        g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        return torch.randperm(len(self), generator=g).to(self.device)

    def batches(
        self,
        batch_size: int,
        *,
        order: torch.Tensor | None = None,
        augment: str = "none",
        padding: int = 4,
        generator: torch.Generator | None = None,
        drop_last: bool = False,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield ``(x float [B,C,H,W] in [0,1], y [B])`` on the device, in ``order`` (default: as stored)."""
        idx = order if order is not None else torch.arange(len(self), device=self.device)
        n = len(idx)
        stop = n - n % batch_size if drop_last else n
        for start in range(0, stop, batch_size):
            b = idx[start : start + batch_size]
            x = to_float(self.x[b])
            if augment != "none":
                x = augment_batch(x, augment, padding, generator)
            yield x, self.y[b]


def augment_batch(
    x: torch.Tensor, augment: str, padding: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Random crop (zero padding ``padding``) and, for ``crop_flip``, a horizontal flip per image.

    ``x``: float [B, C, H, W]. Offsets are drawn on the CPU from ``generator`` (cheap, B
    numbers) and applied with one gather on ``x``'s device.
    """
    if augment not in ("crop", "crop_flip"):
        raise ValueError(f"unknown augmentation {augment!r}")
    b, c, h, w = x.shape
    dev = x.device
    if padding > 0:
        off = torch.randint(0, 2 * padding + 1, (2, b), generator=generator).to(dev)
        xp = F.pad(x, (padding, padding, padding, padding))
        rows = (off[0].view(b, 1) + torch.arange(h, device=dev).view(1, h)).view(b, 1, h, 1)
        cols = (off[1].view(b, 1) + torch.arange(w, device=dev).view(1, w)).view(b, 1, 1, w)
        xp = xp.gather(2, rows.expand(b, c, h, xp.shape[3]))
        x = xp.gather(3, cols.expand(b, c, h, w))
    if augment == "crop_flip":
        flip = (torch.rand(b, generator=generator) < 0.5).to(dev).view(b, 1, 1, 1)
        x = torch.where(flip, x.flip(3), x)
    return x
