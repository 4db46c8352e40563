"""Models by name, each a :class:`LabModel` in [0, 1] input space with normalization inside.

``build_model("smallcnn", info)`` returns the wrapped network; ``MODELS.names()`` lists
the registered architectures. Adding an architecture is one new file here that registers
a factory, plus its import below.
"""

from __future__ import annotations

from lab.models import attention_cnn, fastnet, lenet5, preact_resnet, smallcnn  # noqa: F401
from lab.models.base import LabModel, ModelInfo
from lab.models.registry import MODELS


def build_model(info: ModelInfo) -> LabModel:
    """Build the registered architecture ``info.arch`` for ``info.input_shape`` and classes."""
    factory = MODELS.get(info.arch)
    c, h, w = info.input_shape
    return LabModel(factory(c, info.num_classes, (h, w)), info)


__all__ = ["MODELS", "LabModel", "ModelInfo", "build_model"]
