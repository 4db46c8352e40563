"""Predictions of a model, made one way everywhere: the model in eval mode (its mode restored
afterwards), no gradients, fp32 with autocast off, in batches, each batch moved to the
model's device.

``predict(model, x)`` -> classes int64 [N] (argmax of the logits); ``probabilities(model, x)``
-> softmax float32 [N, K]; ``classify(model, x)`` -> (classes, confidences) from the softmax;
``accuracy(model, split)`` over a device-resident split. ``x``: float images [N, C, H, W] in [0, 1].
Results are on the model's device.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Protocol

import torch
from torch import nn

#: images per forward pass when the caller does not say
DEFAULT_BATCH = 256


class Split(Protocol):
    """What :func:`accuracy` needs of a data split (:class:`lab.data.device.DeviceData` is one)."""

    y: torch.Tensor

    def __len__(self) -> int: ...

    def batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]: ...


def _device(model: nn.Module) -> torch.device | None:
    for t in (*model.parameters(), *model.buffers()):
        return t.device
    return None


@contextlib.contextmanager
def inference(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode, no gradients and autocast off (fp32) inside the block; the mode is restored on exit."""
    device = _device(model)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), torch.autocast(device_type=(device or torch.device("cpu")).type, enabled=False):
            yield model
    finally:
        model.train(was_training)


def logits(model: nn.Module, x: torch.Tensor, batch_size: int = DEFAULT_BATCH) -> Iterator[torch.Tensor]:
    """The logits [b, K] of each batch of ``x``, under :func:`inference` (a generator: use it inside one)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    device = _device(model) or x.device
    for i in range(0, len(x), batch_size):
        yield model(x[i : i + batch_size].to(device=device, dtype=torch.float32))


def predict(model: nn.Module, x: torch.Tensor, batch_size: int = DEFAULT_BATCH) -> torch.Tensor:
    """Predicted classes int64 [N]: the argmax of the fp32 logits, in eval mode."""
    with inference(model):
        out = [z.argmax(1) for z in logits(model, x, batch_size)]
    return torch.cat(out) if out else torch.empty(0, dtype=torch.int64, device=_device(model) or x.device)


def probabilities(model: nn.Module, x: torch.Tensor, batch_size: int = DEFAULT_BATCH) -> torch.Tensor:
    """Softmax probabilities float32 [N, K] of the fp32 logits, in eval mode."""
    with inference(model):
        out = [z.float().softmax(1) for z in logits(model, x, batch_size)]
    if not out:
        raise ValueError("no image to classify")
    return torch.cat(out)


def classify(model: nn.Module, x: torch.Tensor, batch_size: int = DEFAULT_BATCH) -> tuple[torch.Tensor, torch.Tensor]:
    """``(classes int64 [N], confidences float32 [N])``: the most probable class and its probability."""
    conf, classes = probabilities(model, x, batch_size).max(1)
    return classes, conf


def predict_split(model: nn.Module, data: Split, batch_size: int = 1000) -> torch.Tensor:
    """Predicted class per image of ``data`` (int64 [N], on the data's device), in eval mode."""
    with inference(model):
        preds = [model(x).argmax(1) for x, _ in data.batches(batch_size)]
    return torch.cat(preds) if preds else torch.empty(0, dtype=torch.int64, device=data.y.device)


def accuracy(model: nn.Module, data: Split, batch_size: int = 1000) -> float:
    """Fraction of ``data`` classified correctly, computed in fp32 in eval mode (NaN when empty)."""
    if len(data) == 0:
        return float("nan")
    return float((predict_split(model, data, batch_size) == data.y).float().mean().item())
