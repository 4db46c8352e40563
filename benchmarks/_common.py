"""What the benchmarks share: a saved model and its first test images, as the lab's own
paths read them (:func:`lab.runs.samples.from_test_set`: the data the model was trained on,
fingerprint-checked; :func:`lab.data.pixels.to_float`: uint8 to float in [0, 1])."""

from __future__ import annotations

import torch

from lab.data.pixels import to_float
from lab.runs.samples import from_test_set
from lab.training.checkpoint import Checkpoint, load_model


def model_and_test_images(path: str, n: int, device: torch.device | str = "cpu") -> tuple[Checkpoint, torch.Tensor,
                                                                                            torch.Tensor]:  # fmt: skip
    """``(checkpoint with its model in eval mode, x float [n, C, H, W] in [0, 1], y int64 [n])`` on ``device``."""
    ckpt = load_model(path)
    ckpt.model.eval()
    samples = from_test_set(ckpt.info, n)
    assert samples.y is not None
    return ckpt, to_float(samples.x, device), torch.from_numpy(samples.y).to(device)
