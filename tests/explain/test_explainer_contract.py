"""Invariants over every registered explainer (table-driven over the registry)."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from explain_helpers import hook_count

from explain import EXPLAINERS

NAMES = [n for n in EXPLAINERS.names() if n != "attention"]  # attention needs an attention model


def make(name: str, **kw: object):  # type: ignore[no-untyped-def]
    cls = EXPLAINERS.get(name)
    return cls(**{**cls.quick_settings, **kw})


@pytest.mark.parametrize("name", NAMES)
def test_shape_device_dtype_and_finite(trained_fastnet, name: str) -> None:
    m, x = trained_fastnet.model, trained_fastnet.x[:8]
    maps = make(name)(m, x)
    assert maps.shape == (8, 1, 28, 28)
    assert maps.device == x.device and maps.dtype == torch.float32
    assert not maps.requires_grad
    assert torch.isfinite(maps).all()
    assert maps.abs().sum() > 0, f"{name} returned all zeros"


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_under_a_seed_and_caller_rng_untouched(trained_fastnet, name: str) -> None:
    m, x = trained_fastnet.model, trained_fastnet.x[:4]
    kw = {"seed": 3} if EXPLAINERS.get(name).randomized else {}
    rngs = lambda: (torch.rand(3).tolist(), np.random.rand(3).tolist(), random.random())  # noqa: E731
    seed_all = lambda: (torch.manual_seed(123), np.random.seed(123), random.seed(123))  # noqa: E731
    seed_all()
    untouched = rngs()
    seed_all()
    a = make(name, **kw)(m, x)
    after_a = rngs()
    seed_all()
    b = make(name, **kw)(m, x)
    assert torch.equal(a, b)
    assert after_a == untouched, f"{name} moved the caller's RNG"


@pytest.mark.parametrize("name", NAMES)
def test_no_hooks_mode_and_parameters_restored(trained_fastnet, name: str) -> None:
    m, x = trained_fastnet.model, trained_fastnet.x[:4]
    hooks = hook_count(m)
    frozen = next(m.parameters())
    m.zero_grad(set_to_none=True)
    m.train()
    frozen.requires_grad_(False)
    try:
        make(name)(m, x, target=torch.arange(4))
        assert hook_count(m) == hooks
        assert m.training and all(mod.training for mod in m.modules())
        assert not frozen.requires_grad
        assert all(p.requires_grad for p in m.parameters() if p is not frozen)
        assert all(p.grad is None for p in m.parameters())
    finally:
        frozen.requires_grad_(True)
        m.eval()


@pytest.mark.parametrize("name", ["saliency", "integrated_gradients", "occlusion", "gradcam"])
def test_target_defaults_to_the_prediction(trained_fastnet, name: str) -> None:
    m, x = trained_fastnet.model, trained_fastnet.x[:4]
    with torch.no_grad():
        pred = m(x).argmax(1)
    assert torch.equal(make(name)(m, x), make(name)(m, x, pred))
    single = make(name)(m, x[:1], int(pred[0]))
    assert torch.allclose(single, make(name)(m, x, pred)[:1], atol=1e-5)


def test_reduce_none_keeps_channels_and_abs_sum_is_non_negative(trained_fastnet) -> None:
    m, x = trained_fastnet.model, trained_fastnet.x[:2]
    rgb_free = make("input_x_gradient", reduce="none")(m, x)
    assert rgb_free.shape == x.shape
    assert (make("input_x_gradient", reduce="abs_sum")(m, x) >= 0).all()


def test_integrated_gradients_keeps_its_convergence_delta(trained_fastnet) -> None:
    ig = make("integrated_gradients")
    assert ig.last_delta is None
    ig(trained_fastnet.model, trained_fastnet.x[:3])
    assert ig.last_delta is not None and ig.last_delta.shape == (3,)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_runs_on_the_models_device(trained_fastnet) -> None:
    m, x = trained_fastnet.model, trained_fastnet.x[:4]
    m.cuda()
    try:
        for name in NAMES:
            maps = make(name)(m, x)
            assert maps.device == x.device and torch.isfinite(maps).all()
    finally:
        m.cpu()
