"""The model registry: ``@MODELS.register("name")`` on a factory ``(in_ch, classes, (h, w)) -> nn.Module``."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from lab.registry import Registry

ModelFactory = Callable[[int, int, tuple[int, int]], nn.Module]

MODELS: Registry[ModelFactory] = Registry("model")
