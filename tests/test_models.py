"""Every registered architecture keeps the model contract (table-driven over the registry)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lab.core.errors import LabError
from lab.models import MODELS, LabModel, ModelInfo, build_model

SHAPES = {"preact_resnet18": (3, 32, 32)}


def make(arch: str, seed: int = 0) -> LabModel:
    shape = SHAPES.get(arch, (1, 28, 28))
    c = shape[0]
    info = ModelInfo(arch, "test", shape, tuple(str(i) for i in range(10)), (0.3,) * c, (0.2,) * c)
    torch.manual_seed(seed)
    return build_model(info).eval()


def test_registry_has_the_issue_models() -> None:
    assert {"smallcnn", "lenet5", "fastnet", "preact_resnet18", "attention_cnn"} <= set(MODELS.names())


def test_unknown_architecture_is_a_clear_error() -> None:
    with pytest.raises(LabError, match="unknown model 'smalcnn'.*did you mean 'smallcnn'"):
        MODELS.get("smalcnn")


@pytest.mark.parametrize("arch", MODELS.names())
def test_logits_shape_and_dtype(arch: str) -> None:
    m = make(arch)
    x = torch.rand(3, *m.info.input_shape)
    out = m(x)
    assert out.shape == (3, 10) and out.dtype == torch.float32
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("arch", MODELS.names())
def test_normalization_lives_inside_the_model(arch: str) -> None:
    m = make(arch)
    x = torch.rand(2, *m.info.input_shape)
    expected = m.net((x - 0.3) / 0.2)
    torch.testing.assert_close(m(x), expected)
    state = m.state_dict()
    assert torch.allclose(state["mean"], torch.tensor(0.3)) and torch.allclose(state["std"], torch.tensor(0.2))


@pytest.mark.parametrize("arch", MODELS.names())
def test_input_gradients_flow_in_pixel_space(arch: str) -> None:
    m = make(arch)
    x = torch.rand(2, *m.info.input_shape, requires_grad=True)
    m(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


@pytest.mark.parametrize("arch", MODELS.names())
def test_deterministic_under_a_seed(arch: str) -> None:
    a, b = make(arch, seed=1), make(arch, seed=1)
    x = torch.rand(2, *a.info.input_shape)
    torch.testing.assert_close(a(x), b(x), rtol=0, atol=0)
    c = make(arch, seed=2)
    assert not torch.equal(a(x), c(x))


@pytest.mark.parametrize("arch", MODELS.names())
def test_no_inplace_relu(arch: str) -> None:
    """In-place ReLUs break DeepLift and guided backprop hooks (a captum classic)."""
    m = make(arch)
    assert not any(isinstance(mod, nn.ReLU) and mod.inplace for mod in m.modules())


def test_attention_maps_are_read_out_with_the_logits() -> None:
    m = make("attention_cnn")
    x = torch.rand(4, 1, 28, 28)
    logits, maps = m.forward_with_attention(x)
    torch.testing.assert_close(logits, m(x))
    assert [tuple(a.shape) for a in maps] == [(4, 1, 28, 28), (4, 1, 14, 14)]
    assert all(((a >= 0) & (a <= 1)).all() for a in maps)


def test_attention_on_a_model_without_it_is_a_clear_error() -> None:
    m = make("smallcnn")
    assert not m.has_attention
    with pytest.raises(LabError, match="has no attention maps"):
        m.forward_with_attention(torch.rand(1, 1, 28, 28))
