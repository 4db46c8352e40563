"""The model contract: an ``nn.Module`` in [0, 1] pixel space that owns its normalization.

Attacks, defenses, explainers and the app only ever hand a :class:`LabModel` images in
[0, 1] (NCHW); the mean/std live inside as buffers, so nobody can attack normalized
pixels or guess the bounds.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from lab.core.errors import LabError


@dataclass
class ModelInfo:
    """Metadata that travels with the weights (written to ``model.json``)."""

    arch: str
    dataset: str
    input_shape: tuple[int, int, int]  # (C, H, W)
    class_names: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    dataset_fingerprint: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["input_shape"] = list(self.input_shape)
        d["class_names"] = list(self.class_names)
        d["mean"] = list(self.mean)
        d["std"] = list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelInfo:
        return cls(
            arch=str(d["arch"]),
            dataset=str(d["dataset"]),
            input_shape=tuple(int(v) for v in d["input_shape"]),  # type: ignore[arg-type]
            class_names=tuple(str(c) for c in d["class_names"]),
            mean=tuple(float(v) for v in d["mean"]),
            std=tuple(float(v) for v in d["std"]),
            dataset_fingerprint=str(d.get("dataset_fingerprint", "")),
            extra=dict(d.get("extra", {})),
        )


class LabModel(nn.Module):
    """``net`` behind a normalization layer: ``forward(x in [0,1]) -> logits``.

    ``x``: float tensor [B, C, H, W] in [0, 1]. Returns logits [B, num_classes].
    """

    def __init__(self, net: nn.Module, info: ModelInfo) -> None:
        super().__init__()
        self.net = net
        self.info = info
        c = info.input_shape[0]
        if len(info.mean) != c or len(info.std) != c:
            raise ValueError(f"mean/std need {c} values for {c} channels")
        self.register_buffer("mean", torch.tensor(info.mean, dtype=torch.float32).view(1, c, 1, 1))
        self.register_buffer("std", torch.tensor(info.std, dtype=torch.float32).view(1, c, 1, 1))

    mean: torch.Tensor
    std: torch.Tensor

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.normalize(x))

    @property
    def has_attention(self) -> bool:
        return hasattr(self.net, "forward_with_attention")

    def forward_with_attention(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits and the spatial attention maps ([B, 1, h, w] each) of an attention model."""
        if not self.has_attention:
            raise LabError(f"model {self.info.arch!r} has no attention maps")
        return self.net.forward_with_attention(self.normalize(x))  # type: ignore[operator]

    def extra_repr(self) -> str:
        return f"arch={self.info.arch}, dataset={self.info.dataset}, input={self.info.input_shape}"


def check_images(x: object, *, allow_empty: bool = False) -> torch.Tensor:
    """``x`` itself if it is a float [B, C, H, W] tensor in [0, 1] without NaN; LabError otherwise.

    The one input check of the [0, 1] contract, shared by attacks, explainers and the evaluator.
    """
    if not torch.is_tensor(x) or not x.is_floating_point():
        raise LabError(f"images must be a float tensor in [0, 1], got {getattr(x, 'dtype', type(x).__name__)}")
    if x.ndim != 4:
        raise LabError(f"images must be shaped [B, C, H, W], got {tuple(x.shape)}")
    if x.shape[0] == 0:
        if allow_empty:
            return x
        raise LabError("images must hold at least one image, got an empty batch")
    if torch.isnan(x).any():
        raise LabError("images contain NaN values")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0 or hi > 1:
        raise LabError(f"images must lie in [0, 1] (the lab's pixel space), got values in [{lo:.3g}, {hi:.3g}]")
    return x


def model_of(checkpoint: Any) -> Any:
    """The model of a checkpoint (:class:`lab.training.checkpoint.Checkpoint` holds it as ``.model``),
    or ``checkpoint`` itself when it is a model already."""
    return getattr(checkpoint, "model", checkpoint)


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (or buffer); the CPU for a model without tensors."""
    for t in (*model.parameters(), *model.buffers()):
        return t.device
    return torch.device("cpu")


@contextlib.contextmanager
def frozen_eval(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode and ``requires_grad=False`` on every parameter, both restored on exit."""
    was_training = model.training
    flags = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield model
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        model.train(was_training)
