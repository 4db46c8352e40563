"""Which layer a layer method (Grad-CAM, Guided Grad-CAM) looks at.

Each registered architecture names its default as a class attribute,
``default_layer`` (:class:`lab.models.registry.Net`): the rectified output (the ReLU) of its
last convolutional layer or block, still spatial, which is the layer the Grad-CAM paper
uses. (The convolution before its ReLU gives blank maps for many images: its activations
are signed, and the weighted sum is negative everywhere whenever the channels the class
needs are switched off. On a briefly trained SmallCNN that was most of the first 200 MNIST
test images; on the rectified output, a few percent; tests/explain/test_gradcam_not_blank.py.)
An architecture that names none gets the ReLU module right after its last Conv2d, if there
is one, else that Conv2d. Users name another one by its module path
(``"net.features.3"``; the ``"net."`` prefix of a :class:`~lab.models.LabModel` may be left
out). For a denoised model (a denoiser in front of a classifier) the default is the
classifier's, explained through the whole pipeline.
"""

from __future__ import annotations

from torch import nn

from lab.core.errors import LabError


def conv_layer_names(model: nn.Module) -> list[str]:
    """Module paths of every Conv2d in ``model``, in definition order."""
    return [name for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]


def default_layer_name(model: nn.Module) -> str:
    """The wrapped net's ``default_layer`` (as ``"net.<path>"``), else the ReLU after its last Conv2d, else that Conv2d."""
    net = getattr(model, "net", None)
    layer = getattr(type(net), "default_layer", "") if isinstance(net, nn.Module) else ""
    if layer:
        return f"net.{layer}"
    arch = getattr(getattr(model, "info", None), "arch", None)
    classifier = getattr(model, "classifier", None)
    if isinstance(arch, str) and "+" in arch and isinstance(classifier, nn.Module):
        # a denoised model ("dae+smallcnn"): the classifier's layer, behind the denoiser
        return f"classifier.{default_layer_name(classifier)}"
    convs = conv_layer_names(model)
    if not convs:
        raise LabError("the model has no Conv2d layer; name a spatial layer with layer=...")
    leaves = [(name, m) for name, m in model.named_modules() if not list(m.children())]
    names = [name for name, _ in leaves]
    if convs[-1] in names:
        i = names.index(convs[-1])
        if i + 1 < len(leaves) and isinstance(leaves[i + 1][1], nn.ReLU):
            return leaves[i + 1][0]  # the rectified output, defined right after the conv
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
