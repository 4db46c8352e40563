"""Pixels as the lab's models take them: float32 in [0, 1].

The data keeps images as uint8 (0..255): a test split, a file a user hands in, an upload.
:func:`to_float` is the one place they become the float images of the lab's contract.
"""

from __future__ import annotations

import numpy as np
import torch


def to_float(images: np.ndarray | torch.Tensor, device: torch.device | str | None = None) -> torch.Tensor:
    """uint8 images divided by 255, float images as they are: a float32 tensor, any shape.

    ``device``: where the result lives (default: where ``images`` are; numpy arrays: the
    CPU). The images move there first, so the division runs on ``device``.
    """
    if isinstance(images, np.ndarray):
        a = np.ascontiguousarray(images)
        t = torch.from_numpy(a if a.flags.writeable else a.copy())  # torch wants writable memory (cached arrays are not)
    else:
        t = images.detach()
    if device is not None:
        t = t.to(device)
    return t.float().div_(255) if t.dtype == torch.uint8 else t.float()
