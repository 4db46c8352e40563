"""The model contract: an ``nn.Module`` in [0, 1] pixel space that owns its normalization.

Attacks, defenses, explainers and the app only ever hand a :class:`LabModel` images in
[0, 1] (NCHW); the mean/std live inside as buffers, so nobody can attack normalized
pixels or guess the bounds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn


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
            from lab.errors import LabError

            raise LabError(f"model {self.info.arch!r} has no attention maps")
        return self.net.forward_with_attention(self.normalize(x))  # type: ignore[operator]

    def extra_repr(self) -> str:
        return f"arch={self.info.arch}, dataset={self.info.dataset}, input={self.info.input_shape}"
