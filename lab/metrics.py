"""Clean accuracy of a model over a device-resident split (no gradients, mode restored)."""

from __future__ import annotations

import torch
from torch import nn

from lab.data.device import DeviceData


@torch.inference_mode()
def predict_split(model: nn.Module, data: DeviceData, batch_size: int = 1000) -> torch.Tensor:
    """Predicted class per image of ``data`` (int64 [N], on the data's device); eval mode inside."""
    was_training = model.training
    model.eval()
    try:
        preds = [model(x).argmax(1) for x, _ in data.batches(batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(preds) if preds else torch.empty(0, dtype=torch.int64, device=data.device)


def accuracy(model: nn.Module, data: DeviceData, batch_size: int = 1000) -> float:
    """Fraction of ``data`` classified correctly, computed in fp32 in eval mode."""
    if len(data) == 0:
        return float("nan")
    return float((predict_split(model, data, batch_size) == data.y).float().mean().item())
