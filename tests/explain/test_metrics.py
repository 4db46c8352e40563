"""Explanation-quality metrics: deletion/insertion, infidelity, sensitivity, the
model-randomization sanity check and explanations under attack."""

from __future__ import annotations

import json

import pytest
import torch
from explain_helpers import tiny
from torch import nn

from explain.base import Explainer
from explain.metrics import (
    deletion_insertion,
    infidelity,
    random_map_baseline,
    sanity_check,
    sensitivity,
    spearman,
    ssim,
    top_k_iou,
    under_attack,
)
from lab.core.errors import LabError

REGION = (slice(4, 12), slice(4, 12))


class RegionNet(nn.Module):
    """Class 0's logit depends only on the mean brightness of an 8x8 region; classes 1 and 2 are 0."""

    def __init__(self) -> None:
        super().__init__()
        mask = torch.zeros(1, 1, 28, 28)
        mask[(..., *REGION)] = 1
        self.register_buffer("mask", mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = (x * self.mask).sum((1, 2, 3)) / self.mask.sum()
        z = torch.zeros_like(m)
        return torch.stack([12 * (m - 0.5), z, z], 1)


class ImageItself(Explainer):
    """A map that ignores the model: the input image (fails the sanity check by construction)."""

    name = "image_itself"

    def attribute(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return x.clone()


class Constant(Explainer):
    name = "constant"

    def attribute(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return torch.ones_like(x)


def region_images(n: int = 8) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    x = 0.3 * torch.rand(n, 1, 28, 28, generator=g)
    x[(..., *REGION)] = 0.8 + 0.2 * torch.rand(n, 1, 8, 8, generator=g)
    return x


# ---- deletion / insertion -------------------------------------------------------------------


def test_deletion_insertion_ranks_the_true_region_first() -> None:
    m, x = tiny(RegionNet(), "region"), region_images()
    g = torch.Generator().manual_seed(1)
    good = torch.zeros(8, 1, 28, 28)
    good[(..., *REGION)] = 1
    good += 0.01 * torch.rand(8, 1, 28, 28, generator=g)  # a little order inside and outside
    d_good, i_good, _ = deletion_insertion(m, x, good, steps=20)
    d_inv, i_inv, _ = deletion_insertion(m, x, -good, steps=20)
    d_rand, i_rand, _ = random_map_baseline(m, x, steps=20, seed=3)
    assert (d_good < 0.1).all() and (i_good > 0.9).all(), (d_good, i_good)
    assert (d_good + 0.15 < d_rand).all() and (d_good + 0.5 < d_inv).all()
    assert (i_good > i_rand + 0.1).all() and (i_good > i_inv + 0.3).all()


@pytest.mark.parametrize("steps", [1, 7, 20])
@pytest.mark.parametrize("insertion_start", ["blur", "baseline"])
def test_deletion_insertion_shapes_and_ranges(steps: int, insertion_start: str) -> None:
    m, x = tiny(RegionNet(), "region"), region_images(5)
    maps = torch.randn(5, 1, 28, 28)
    d, i, curves = deletion_insertion(m, x, maps, target=0, steps=steps, insertion_start=insertion_start, batch_size=7)
    assert d.shape == i.shape == (5,)
    assert ((d >= 0) & (d <= 1) & (i >= 0) & (i <= 1)).all()
    assert curves.deletion.shape == curves.insertion.shape == (5, steps + 1)
    assert curves.fractions[0] == 0.0 and curves.fractions[-1] == 1.0 and len(curves.fractions) == steps + 1
    # the curves start at the clean image (deletion) and end at it (insertion)
    p = m(x).softmax(1)[:, 0].detach()
    assert torch.allclose(curves.deletion[:, 0], p, atol=1e-6) and torch.allclose(curves.insertion[:, -1], p, atol=1e-6)
    json.dumps(curves.to_dict())


def test_random_map_baseline_is_seeded_and_leaves_the_callers_rng_alone() -> None:
    m, x = tiny(RegionNet(), "region"), region_images(4)
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a = random_map_baseline(m, x, seed=5, steps=10)
    b = random_map_baseline(m, x, seed=5, steps=10)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_deletion_insertion_rejects_bad_settings() -> None:
    m, x = tiny(RegionNet(), "region"), region_images(2)
    with pytest.raises(LabError, match="steps"):
        deletion_insertion(m, x, torch.rand(2, 1, 28, 28), steps=0)
    with pytest.raises(LabError, match="maps"):
        deletion_insertion(m, x, torch.rand(3, 1, 28, 28))


# ---- infidelity / sensitivity ----------------------------------------------------------------


def test_infidelity_and_sensitivity_are_finite_non_negative_per_image(trained_fastnet) -> None:  # type: ignore[no-untyped-def]
    model, x = trained_fastnet.model, trained_fastnet.x[:8]
    torch.manual_seed(7)
    before = torch.random.get_rng_state()
    inf = infidelity(model, x, "saliency", n_perturb_samples=4)
    sens = sensitivity(model, x, "saliency", n_perturb_samples=3)
    assert torch.equal(torch.random.get_rng_state(), before)
    for v in (inf, sens):
        assert v.shape == (8,) and torch.isfinite(v).all() and (v >= 0).all()
    assert torch.equal(inf, infidelity(model, x, "saliency", n_perturb_samples=4))  # seeded
    assert torch.equal(sens, sensitivity(model, x, "saliency", n_perturb_samples=3))


def test_a_constant_map_has_zero_sensitivity(trained_fastnet) -> None:  # type: ignore[no-untyped-def]
    sens = sensitivity(trained_fastnet.model, trained_fastnet.x[:4], Constant(), n_perturb_samples=3)
    assert sens.shape == (4,) and torch.equal(sens, torch.zeros(4))


# ---- similarities ---------------------------------------------------------------------------


def test_similarities_of_identical_and_unrelated_maps() -> None:
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(6, 1, 28, 28, generator=g), torch.rand(6, 1, 28, 28, generator=g)
    for fn in (spearman, ssim, top_k_iou):
        same = fn(a, a.clone())
        assert same.shape == (6,) and torch.allclose(same, torch.ones(6, dtype=same.dtype))
    assert spearman(a, b).abs().max() < 0.2 and ssim(a, b).abs().max() < 0.2
    assert torch.allclose(spearman(a, 2 * a + 1), torch.ones(6, dtype=torch.float64))  # rank-based
    assert torch.allclose(spearman(a, -a, absolute=False), -torch.ones(6, dtype=torch.float64))
    assert (top_k_iou(a, b, top_k=0.1) < 0.3).all()
    const = torch.ones(6, 1, 28, 28)
    assert torch.equal(spearman(const, const), torch.ones(6, dtype=torch.float64))
    assert torch.equal(spearman(const, a), torch.zeros(6, dtype=torch.float64))


# ---- sanity check ---------------------------------------------------------------------------


def _weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_sanity_check_passes_for_saliency_and_leaves_the_model_alone(trained_fastnet) -> None:  # type: ignore[no-untyped-def]
    model, x = trained_fastnet.model, trained_fastnet.x[:16]
    before = _weights(model)
    # measured over fixture seeds 0-4, both precisions: final Spearman 0.09-0.11 (passes below 0.5)
    result = sanity_check(model, x, "saliency", layers="cascade")
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert result.passed, result
    assert (
        result.stages[0] == "net.classifier.3" and len(result.stages) == len(result.spearman) == len(result.ssim) == 4
    )
    assert all(-1 <= v <= 1 for v in result.spearman + result.ssim)
    assert len(result.spearman_per_image[-1]) == 16
    json.dumps(result.to_dict())


def test_sanity_check_independent_mode_ends_with_everything_randomized(trained_fastnet) -> None:  # type: ignore[no-untyped-def]
    # measured over fixture seeds 0-4, both precisions: final Spearman 0.07-0.10 (passes below 0.5)
    result = sanity_check(trained_fastnet.model, trained_fastnet.x[:8], "saliency", layers="independent")
    assert result.stages[-1] == "all" and len(result.stages) == 5 and result.passed


def test_sanity_check_fails_for_a_map_that_ignores_the_model(trained_fastnet) -> None:  # type: ignore[no-untyped-def]
    model, x = trained_fastnet.model, trained_fastnet.x[:8]
    before = _weights(model)
    for explainer in (ImageItself(), Constant()):
        result = sanity_check(model, x, explainer)
        assert not result.passed and result.spearman[-1] == pytest.approx(1.0), result
        assert result.ssim[-1] == pytest.approx(1.0)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_sanity_check_rejects_a_bad_mode(trained_fastnet) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(LabError, match="layers"):
        sanity_check(trained_fastnet.model, trained_fastnet.x[:2], "saliency", layers="top")


# ---- under attack ---------------------------------------------------------------------------


def test_under_attack_eps_zero_changes_nothing(trained_fastnet) -> None:  # type: ignore[no-untyped-def]
    t = trained_fastnet
    r = under_attack(t.model, t.x[:8], t.y[:8], "saliency", eps=0.0)
    assert r["mean"]["spearman"] == pytest.approx(1.0) and r["mean"]["top_k_iou"] == pytest.approx(1.0)
    assert r["mean"]["ssim"] == pytest.approx(1.0)
    assert r["clean_pred"] == r["adv_pred"]
    json.dumps(r)


def test_under_attack_reports_valid_similarities(trained_fastnet) -> None:  # type: ignore[no-untyped-def]
    t = trained_fastnet
    r = under_attack(t.model, t.x[:16], t.y[:16], "saliency", eps=0.1, attack_settings={"steps": 5}, top_k=0.1)
    for key in ("spearman", "ssim", "top_k_iou", "clean_pred", "adv_pred", "label"):
        assert len(r[key]) == 16
    assert all(-1 <= v <= 1 for v in r["spearman"] + r["ssim"])
    assert all(0 <= v <= 1 for v in r["top_k_iou"])
    assert r["adv_accuracy"] <= r["clean_accuracy"]
    # the attack moved the maps: mean Spearman 0.43-0.54 over fixture seeds 0-4, both precisions
    assert r["mean"]["spearman"] < 1.0
    assert r["attack"]["name"] == "pgd" and r["attack"]["eps"] == 0.1
