"""Explanations that must be right, on hand-made models whose answer is known."""

from __future__ import annotations

import pytest
import torch
from explain_helpers import SmoothNet, TopLeftNet, tiny

from explain import EXPLAINERS


def test_integrated_gradients_completeness() -> None:
    torch.manual_seed(0)
    m = tiny(SmoothNet(), "smoothnet")
    x = torch.rand(4, 1, 28, 28)
    target = torch.tensor([0, 1, 2, 0])
    ig = EXPLAINERS.get("integrated_gradients")(n_steps=128, internal_batch_size=96)
    attr = ig(m, x, target)
    with torch.no_grad():
        gap = (m(x) - m(torch.zeros_like(x))).gather(1, target[:, None]).squeeze(1)
    total = attr.sum((1, 2, 3))
    assert torch.allclose(total, gap, atol=1e-3 + 1e-3 * gap.abs().max().item()), (total, gap)
    assert ig.last_delta is not None and ig.last_delta.abs().max() < 1e-3


@pytest.mark.parametrize("name", ["saliency", "input_x_gradient", "integrated_gradients", "gradcam"])
def test_mass_lies_where_the_model_looks(name: str) -> None:
    torch.manual_seed(0)
    m = tiny(TopLeftNet(), "topleft")
    x = torch.rand(6, 1, 28, 28) * 0.9 + 0.1
    cls = EXPLAINERS.get(name)
    maps = cls(**cls.quick_settings)(m, x, 0).abs()
    inside = maps[..., :8, :8].sum((1, 2, 3))  # the 7x7 patch plus the conv's one-pixel reach
    share = inside / maps.sum((1, 2, 3))
    assert (share > 0.9).all(), f"{name}: only {share.min():.2f} of the mass in the top-left patch"
