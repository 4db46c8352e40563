"""The attention method, default layers per architecture, and one-sentence errors for bad input."""

from __future__ import annotations

import pytest
import torch
from explain_helpers import hook_count, info
from torch import nn

from explain import EXPLAINERS, Explainer, explain
from explain.layers import resolve_layer
from lab.core.errors import LabError
from lab.models import MODELS, LabModel, build_model


@pytest.fixture(scope="module")
def attention_model():  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    return build_model(info("attention_cnn")).eval()


def test_attention_maps_per_stage_and_mean(attention_model) -> None:
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        _, maps = attention_model.forward_with_attention(x)
    default = EXPLAINERS.get("attention")()(attention_model, x)
    mean = EXPLAINERS.get("attention")(stage=None)(attention_model, x)
    first = EXPLAINERS.get("attention")(stage=0)(attention_model, x)
    second = EXPLAINERS.get("attention")(stage=1)(attention_model, x)
    for out in (default, mean, first, second):
        assert out.shape == (3, 1, 28, 28) and (out >= 0).all() and (out <= 1).all()
    assert torch.allclose(first, maps[0], atol=1e-6)  # stage 1 is already at input size
    assert torch.allclose(mean, (first + second) / 2, atol=1e-6)
    assert torch.equal(default, second)  # the default is the last stage
    # the maps are a distribution over locations scaled to a peak of 1
    for m in maps:
        assert torch.allclose(m.amax(dim=(2, 3)), torch.ones(3, 1))
    with pytest.raises(LabError, match="stage 2 does not exist"):
        EXPLAINERS.get("attention")(stage=2)(attention_model, x)


def test_attention_refuses_a_model_without_attention() -> None:
    m = build_model(info("smallcnn")).eval()
    with pytest.raises(LabError) as e:
        explain(m, torch.rand(2, 1, 28, 28), method="attention")
    assert str(e.value) == "model 'smallcnn' has no attention maps; use gradcam or another method"


class _ReusesAModule(nn.Module):
    """Calls one ReLU module twice, which captum's DeepLift refuses."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.conv2, self.relu = nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU()
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(4 * 28 * 28, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.relu(self.conv2(self.relu(self.conv1(x)))))


def test_deeplift_refuses_module_reuse_and_leaves_no_hooks() -> None:
    torch.manual_seed(0)
    model = LabModel(_ReusesAModule(), info("smallcnn")).eval()
    hooks = hook_count(model)
    with pytest.raises(LabError, match="more than once"):
        explain(model, torch.rand(2, 1, 28, 28), method="deeplift")
    assert hook_count(model) == hooks


def test_deeplift_explains_the_attention_cnn(attention_model) -> None:
    maps = explain(attention_model, torch.rand(2, 1, 28, 28), method="deeplift")
    assert maps.shape == (2, 1, 28, 28) and torch.isfinite(maps).all()


@pytest.mark.parametrize("arch", MODELS.names())
def test_gradcam_has_a_default_layer_for_every_architecture(arch: str) -> None:
    torch.manual_seed(0)
    m = build_model(info(arch, channels=3, side=32)).eval()
    seen: list[torch.Tensor] = []
    handle = resolve_layer(m, None).register_forward_hook(lambda mod, inp, out: seen.append(out.detach()))
    with torch.no_grad():
        m(torch.randn(2, 3, 32, 32))
    handle.remove()
    # the Grad-CAM paper's layer: the rectified output of the last convolutional block, still spatial
    (out,) = seen
    assert out.ndim == 4 and out.shape[2] > 1 and out.shape[3] > 1, out.shape
    assert (out >= 0).all(), f"{arch}'s default layer is not rectified"
    maps = EXPLAINERS.get("gradcam")()(m, torch.rand(2, 3, 32, 32))
    assert maps.shape == (2, 1, 32, 32) and (maps >= 0).all() and torch.isfinite(maps).all()


def test_layer_by_name_with_or_without_the_net_prefix(trained_fastnet) -> None:
    m, x = trained_fastnet.model, trained_fastnet.x[:2]
    a = EXPLAINERS.get("gradcam")(layer="features.0")(m, x)
    b = EXPLAINERS.get("gradcam")(layer="net.features.0")(m, x)
    assert torch.equal(a, b) and a.shape == (2, 1, 28, 28)


@pytest.mark.parametrize("name", ["gradcam", "guided_gradcam"])
def test_unknown_layer_lists_conv_layers(trained_fastnet, name: str) -> None:
    with pytest.raises(LabError, match=r"no layer 'conv9'.*net\.features\.0"):
        EXPLAINERS.get(name)(layer="conv9")(trained_fastnet.model, trained_fastnet.x[:2])


def test_unknown_method() -> None:
    with pytest.raises(LabError, match=r"unknown explainer 'saliancy' \(did you mean 'saliency'\?\)"):
        EXPLAINERS.get("saliancy")


@pytest.mark.parametrize(
    ("target", "message"),
    [(10, "target 10 is out of range; the model has classes 0..9"),
     (-1, "target -1 is out of range"),
     (torch.tensor([0, 1, 2]), "one class index or 2 of them"),
     (torch.tensor([0.0, 1.0]), "integer class indices")],
)  # fmt: skip
def test_bad_targets(trained_fastnet, target: object, message: str) -> None:
    with pytest.raises(LabError, match=message):
        explain(trained_fastnet.model, trained_fastnet.x[:2], target, method="saliency")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("x", "message"),
    [(torch.rand(1, 28, 28), r"shaped \[B, C, H, W\]"),
     (torch.rand(2, 1, 28, 28) * 2, r"in \[0, 1\]"),
     (torch.full((1, 1, 28, 28), float("nan")), "NaN"),
     (torch.zeros(2, 1, 28, 28, dtype=torch.uint8), "float tensor")],
)  # fmt: skip
def test_bad_images(trained_fastnet, x: torch.Tensor, message: str) -> None:
    with pytest.raises(LabError, match=message):
        explain(trained_fastnet.model, x, method="saliency")


def test_bad_settings() -> None:
    with pytest.raises(LabError, match="reduce"):
        EXPLAINERS.get("saliency")(reduce="mean")
    with pytest.raises(LabError, match="n_steps"):
        EXPLAINERS.get("integrated_gradients")(n_steps=0)
    with pytest.raises(LabError, match="unknown base method"):
        EXPLAINERS.get("smoothgrad")(base="lime")
    with pytest.raises(TypeError):
        EXPLAINERS.get("saliency")("positional")  # type: ignore[misc]


class _LeakyExplainer(Explainer):
    """Not registered: leaves forward, backward and global hooks behind, then fails."""

    name = "leaky"

    def attribute(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        layer = next(iter(model.modules()))
        layer.register_forward_hook(lambda *a: None)
        layer.register_full_backward_hook(lambda *a: None)
        nn.modules.module.register_module_forward_hook(lambda *a: None)
        raise RuntimeError("boom")


def test_hooks_left_by_a_failing_method_are_removed(trained_fastnet) -> None:
    m = trained_fastnet.model
    hooks, global_hooks = hook_count(m), len(nn.modules.module._global_forward_hooks)
    m.train()
    try:
        with pytest.raises(RuntimeError, match="boom"):
            _LeakyExplainer()(m, trained_fastnet.x[:2])
        assert hook_count(m) == hooks and len(nn.modules.module._global_forward_hooks) == global_hooks
        assert m.training and all(p.requires_grad for p in m.parameters())
    finally:
        m.eval()
