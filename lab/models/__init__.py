"""Models by name, each a :class:`LabModel` in [0, 1] input space with normalization inside.

``build_model(info)`` returns the wrapped network; ``MODELS.names()`` lists the registered
architectures. Adding an architecture is one new file here that registers its ``nn.Module``
class (built as ``cls(in_channels, num_classes, (h, w))``, facts such as ``default_layer`` as
class attributes: :class:`~lab.models.registry.Net`); the registry imports every module here
on first use, and plug-ins add architectures through the entry point group ``lab.models``
(:mod:`lab.core.registry`).
"""

from __future__ import annotations

from lab.models.base import LabModel, ModelInfo
from lab.models.registry import MODELS, Net


def build_model(info: ModelInfo) -> LabModel:
    """Build the registered architecture ``info.arch`` for ``info.input_shape`` and classes."""
    cls = MODELS.get(info.arch)
    c, h, w = info.input_shape
    return LabModel(cls(c, info.num_classes, (h, w)), info)


__all__ = ["MODELS", "LabModel", "ModelInfo", "Net", "build_model"]
