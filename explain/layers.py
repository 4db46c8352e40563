"""Which layer a layer method (Grad-CAM, Guided Grad-CAM) looks at.

Each registered architecture has a default: its last convolutional layer or block, whose
output is still spatial. Users name another one by its module path (``"net.features.3"``;
the ``"net."`` prefix of a :class:`~lab.models.LabModel` may be left out). For a denoised
model (a denoiser in front of a classifier) the default is the classifier's, explained
through the whole pipeline.
"""

from __future__ import annotations

from torch import nn

from lab.errors import LabError

#: architecture -> module path of the default Grad-CAM layer (inside a LabModel)
DEFAULT_LAYERS: dict[str, str] = {
    "smallcnn": "net.features.7",  # last conv (64@3x3), before its ReLU and pool
    "lenet5": "net.features.3",  # conv 16@5x5
    "fastnet": "net.features.2",  # conv 32@4x4 stride 2
    "preact_resnet18": "net.layer4",  # the last residual stage
    "attention_cnn": "net.stage2",  # the last conv-bn-relu stage
}


def conv_layer_names(model: nn.Module) -> list[str]:
    """Module paths of every Conv2d in ``model``, in definition order."""
    return [name for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]


def default_layer_name(model: nn.Module) -> str:
    """The registered default for the model's architecture, else its last Conv2d."""
    arch = getattr(getattr(model, "info", None), "arch", None)
    if arch in DEFAULT_LAYERS:
        return DEFAULT_LAYERS[arch]
    classifier = getattr(model, "classifier", None)
    if isinstance(arch, str) and "+" in arch and isinstance(classifier, nn.Module):
        # a denoised model ("dae+smallcnn"): the classifier's layer, behind the denoiser
        return f"classifier.{default_layer_name(classifier)}"
    convs = conv_layer_names(model)
    if not convs:
        raise LabError("the model has no Conv2d layer; name a spatial layer with layer=...")
    return convs[-1]


def resolve_layer(model: nn.Module, name: str | None) -> nn.Module:
    """The module at path ``name`` (or the default layer); LabError naming valid choices otherwise."""
    path = default_layer_name(model) if name is None else name
    modules = dict(model.named_modules())
    for candidate in (path, f"net.{path}", f"classifier.{path}", f"classifier.net.{path}"):
        if candidate and candidate in modules:
            return modules[candidate]
    convs = conv_layer_names(model)
    shown = ", ".join(convs[-5:]) if convs else "(none)"
    raise LabError(f"the model has no layer {path!r}; conv layers include: {shown}")
