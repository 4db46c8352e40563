"""Random resizing and padding (Xie et al. 2018, "Mitigating Adversarial Effects Through
Randomization"): each image is resized to a random side ``s`` in ``[min_scale * H, H]``
and zero-padded back to ``H x W`` at a random offset. A fresh draw on every call, so the
evaluator attacks it with EOT (Athalye et al. 2018); bilinear resizing is
differentiable, so no BPDA is needed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from defenses.denoisers.base import DENOISERS, Denoiser
from lab.core.settings import between


@DENOISERS.register("random_resize")
class RandomResize(Denoiser):
    title = "random resize and pad (Xie et al. 2018)"
    randomized = True

    def __init__(self, input_shape: tuple[int, int, int], *, min_scale: float = 0.8) -> None:
        super().__init__(input_shape)
        self.min_scale = float(between("min_scale", min_scale, 0.1, 1.0))  # smallest resize factor

    def transform(self, x: torch.Tensor, backward: str = "zero") -> torch.Tensor:
        b, c, h, w = x.shape
        lo = max(1, int(round(self.min_scale * min(h, w))))
        out = torch.zeros_like(x)
        # one size per call (a batch shares it, like Xie et al.), offsets per image
        side = int(torch.randint(lo, min(h, w) + 1, (1,)))
        small = F.interpolate(x, size=(side, side), mode="bilinear", align_corners=False).clamp(0, 1)
        top = torch.randint(0, h - side + 1, (b,))
        left = torch.randint(0, w - side + 1, (b,))
        # every image pasted at its own offset in one indexed write: [B, side, side] index
        # grids (advanced indices first, then the channel slice), values [B, side, side, C]
        span = torch.arange(side)
        rows = (top[:, None] + span)[:, :, None].to(x.device)
        cols = (left[:, None] + span)[:, None, :].to(x.device)
        batch = torch.arange(b, device=x.device)[:, None, None]
        out[batch, :, rows, cols] = small.permute(0, 2, 3, 1)
        return out
