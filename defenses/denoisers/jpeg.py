"""JPEG re-encoding (Dziugaite et al. 2016; Guo et al. 2018): each image is written as a
JPEG of ``quality`` with Pillow and decoded again. Pillow has no gradient, so the
white-box row sees none (masked); BPDA uses the identity in the backward pass, which is
how Athalye, Carlini & Wagner (2018) broke it.
"""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image

from defenses.denoisers.base import DENOISERS, Denoiser, non_differentiable
from lab.core.errors import LabError
from lab.core.settings import between


def jpeg_roundtrip(x: torch.Tensor, quality: int) -> torch.Tensor:
    """``x`` [B, C, H, W] in [0, 1] (C = 1 or 3) through a JPEG encode/decode; same shape, float32."""
    arr = (x.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
    out = np.empty_like(arr)
    mode = "L" if arr.shape[1] == 1 else "RGB"
    for i, img in enumerate(arr):
        pil = Image.fromarray(img[0] if mode == "L" else img.transpose(1, 2, 0), mode=mode)
        buf = io.BytesIO()
        pil.save(buf, format="JPEG", quality=int(quality))
        dec = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert(mode))
        out[i] = dec[None] if mode == "L" else dec.transpose(2, 0, 1)
    return torch.from_numpy(out).to(x.device).float() / 255


@DENOISERS.register("jpeg")
class JPEG(Denoiser):
    title = "JPEG re-encoding (Guo et al. 2018)"
    differentiable = False

    def __init__(self, input_shape: tuple[int, int, int], *, quality: int = 75) -> None:
        super().__init__(input_shape)
        self.quality = int(between("quality", quality, 1, 95))  # Pillow's JPEG quality
        if input_shape[0] not in (1, 3):
            raise LabError(f"jpeg works on 1- or 3-channel images, this classifier takes {input_shape[0]} channels")

    def transform(self, x: torch.Tensor, backward: str = "zero") -> torch.Tensor:
        return non_differentiable(x, jpeg_roundtrip(x, self.quality), backward)
