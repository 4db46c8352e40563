"""Explanations that must be right, on hand-made models whose answer is known."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from explain_helpers import SmoothNet, TinyAttentionNet, TopLeftNet, bars, tiny

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


#: Training seed of ``trained_attention`` (torch init, data and batch order). With 150 steps
#: seed 3 did not converge (32-image accuracy 0.66); with 300 every seed of 0-7 reaches 1.00.
ATTENTION_SEED = 0


@pytest.fixture(scope="module")
def trained_attention():  # type: ignore[no-untyped-def]
    """TinyAttentionNet trained (300 Adam steps, fp32, a few seconds) on the bars task."""
    torch.manual_seed(ATTENTION_SEED)
    m = tiny(TinyAttentionNet(), "tiny_attention")
    x, y = bars(512, seed=ATTENTION_SEED)
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(ATTENTION_SEED)
    for _ in range(300):
        idx = torch.randint(0, len(x), (64,), generator=g)
        loss = F.cross_entropy(m(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return m.eval()


@pytest.mark.parametrize("name", ["attention", "saliency", "input_x_gradient", "integrated_gradients", "gradcam"])
def test_a_trained_attention_model_looks_at_the_evidence(trained_attention, name: str) -> None:
    """The answer lies in the top-left 7x7 patch (10x10 with the conv's reach: 12.8% of the
    image); distractor bars elsewhere carry no information. The attention map and the
    gradient maps of the trained model put most of their mass there."""
    x, y = bars(32, seed=1)
    with torch.no_grad():
        assert (trained_attention(x).argmax(1) == y).float().mean() >= 0.95
    cls = EXPLAINERS.get(name)
    maps = cls(**cls.quick_settings)(trained_attention, x, None).abs()
    # an all-zero map (Grad-CAM's ReLU can give one) puts no mass on the evidence: share 0, not NaN
    share = maps[..., :10, :10].sum((1, 2, 3)) / maps.sum((1, 2, 3)).clamp_min(1e-12)
    # Measured over training seeds 0-7 (ATTENTION_SEED): accuracy 1.00 on every seed; shares
    # attention 0.86-1.00, saliency 0.81-1.00, input x gradient 0.83-1.00, integrated
    # gradients 0.73-1.00 (threshold 0.6). Grad-CAM weighs whole channels by their mean
    # gradient, so the distractors, made of the same features, keep much of the mass: 0.18-0.53
    # (0.35 at seed 0). It is only asked to beat the area share (0.13): threshold 0.15.
    need = 0.15 if name == "gradcam" else 0.6
    assert share.mean() > need, f"{name}: only {share.mean():.2f} of the mass on the evidence (area 0.13)"
