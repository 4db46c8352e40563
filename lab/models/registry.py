"""The model registry: ``@MODELS.register("name")`` on an ``nn.Module`` class.

A registered class is built as ``cls(in_channels, num_classes, (h, w))`` and maps normalized
images [B, C, H, W] to logits [B, classes]; :class:`~lab.models.LabModel` puts the
normalization in front of it. Its facts are class attributes (:class:`Net` lists them), so
nothing else keeps a table of architectures by name.
"""

from __future__ import annotations

from typing import ClassVar

from torch import nn

from lab.core.registry import Registry


class Net(nn.Module):
    """Base of the lab's architectures: the facts other layers read from a registered class.

    Plug-in architectures need not subclass it; a missing fact reads as its default here.
    """

    #: the registered name (set by ``@MODELS.register``)
    name: ClassVar[str] = ""
    #: module path, inside the net, of the layer a layer method (Grad-CAM) explains by default:
    #: the rectified output (ReLU) of the last conv layer or block, still spatial ("": the ReLU
    #: defined right after the last Conv2d, else that Conv2d)
    default_layer: ClassVar[str] = ""


MODELS: Registry[type[nn.Module]] = Registry("model", package="lab.models", entry_points="lab.models")
