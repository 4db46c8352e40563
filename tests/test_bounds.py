"""Bound propagation (lab.models.bounds): sound on tiny networks (every sampled output and every PGD
output lies inside), exact on one affine layer, CROWN at least as tight as IBP, the normalization
and residual sums understood, unsupported operations named."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lab.core.errors import LabError
from lab.models import LabModel, ModelInfo, build_model
from lab.models.bounds import Bounder, certified

METHODS = ("ibp", "crown-ibp", "crown")


def _info(shape: tuple[int, int, int], k: int) -> ModelInfo:
    return ModelInfo(arch="tiny", dataset="tiny", input_shape=shape, class_names=tuple(str(i) for i in range(k)),
                     mean=(0.3,) * shape[0], std=(0.7,) * shape[0])  # fmt: skip


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.head = nn.Linear(4 * 4 * 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.bn(self.conv(x)))
        h = h + self.conv2(h)  # a residual sum
        h = nn.functional.avg_pool2d(h, 2)
        return self.head(h.view(h.size(0), -1))


def _nets() -> dict[str, LabModel]:
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(16, 12), nn.ReLU(), nn.Linear(12, 10), nn.ReLU(), nn.Linear(10, 3))
    cnn = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(3 * 3 * 3, 8),
                        nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 3))  # fmt: skip
    res = Residual()
    with torch.no_grad():  # BatchNorm statistics that are not the identity
        res.bn.running_mean.uniform_(-0.2, 0.2)
        res.bn.running_var.uniform_(0.5, 2.0)
        res.bn.weight.uniform_(-1.5, 1.5)
    out = {}
    for name, net, shape in (("mlp", mlp, (1, 4, 4)), ("cnn", cnn, (1, 8, 8)), ("residual", res, (1, 8, 8))):
        m = LabModel(net, _info(shape, 3)).double().eval()
        out[name] = m
    return out


NETS = _nets()


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("name", sorted(NETS))
def test_bounds_contain_dense_samples_and_pgd(name: str, method: str) -> None:
    model = NETS[name]
    torch.manual_seed(1)
    shape = model.info.input_shape
    x = torch.rand(4, *shape, dtype=torch.float64)
    y = model(x).argmax(1)
    eps = 0.05
    bounder = Bounder(model)
    m = bounder.margins(x, y, eps, method)  # lower bounds of z_y - z_j
    lo, hi = Bounder.box(x, eps)
    # dense sampling of the box, its corners included
    n = 4000
    u = torch.rand(n, *x.shape, dtype=torch.float64)
    u[: n // 4] = u[: n // 4].round()
    xs = lo + u * (hi - lo)
    with torch.no_grad():
        z = model(xs.view(-1, *shape)).view(n, x.shape[0], -1)
    true_margin = z.gather(2, y.view(1, -1, 1).expand(n, -1, 1)) - z  # [n, B, K]
    assert (true_margin.amin(0) >= m.masked_fill(torch.isinf(m), -1e9) - 1e-9).all()
    # PGD that minimizes each margin from a random start stays above the bound too
    for j in range(3):
        d = (torch.rand_like(x) * 2 - 1) * eps
        for _ in range(30):
            d.requires_grad_(True)
            xa = (x + d).clamp(0, 1)
            zz = model(xa)
            obj = (zz.gather(1, y.view(-1, 1)).squeeze(1) - zz[:, j]).sum()
            (g,) = torch.autograd.grad(obj, d)
            d = (d.detach() - eps / 8 * g.sign()).clamp(-eps, eps)
        with torch.no_grad():
            zz = model((x + d).clamp(0, 1))
            found = zz.gather(1, y.view(-1, 1)).squeeze(1) - zz[:, j]
        keep = y != j
        assert (found[keep] >= m[keep, j] - 1e-9).all()


def test_one_affine_layer_bounds_are_exact() -> None:
    torch.manual_seed(2)
    lin = nn.Sequential(nn.Flatten(), nn.Linear(9, 4))
    model = LabModel(lin, _info((1, 3, 3), 4)).double().eval()
    x = torch.rand(3, 1, 3, 3, dtype=torch.float64) * 0.8 + 0.1
    eps = 0.1
    lo, hi = Bounder.box(x, eps)
    low, up = Bounder(model).interval(lo, hi)
    # the exact extremes: each output is a linear function, extreme at a corner chosen by weight signs
    mean, std = float(model.mean.flatten()[0]), float(model.std.flatten()[0])
    w = (lin[1].weight / std).detach()  # the normalization folded in
    b = (lin[1].bias - (lin[1].weight * mean / std).sum(1)).detach()
    flat_lo, flat_hi = lo.flatten(1), hi.flatten(1)
    exact_up = flat_hi @ w.clamp(min=0).T + flat_lo @ w.clamp(max=0).T + b
    exact_lo = flat_lo @ w.clamp(min=0).T + flat_hi @ w.clamp(max=0).T + b
    torch.testing.assert_close(up, exact_up)
    torch.testing.assert_close(low, exact_lo)
    # the margins of both methods are the exact minima of z_y - z_j too
    y = torch.tensor([0, 1, 3])
    for method in METHODS:
        with torch.no_grad():
            m = Bounder(model).margins(x, y, eps, method)
        for i in range(3):
            for j in range(4):
                if j == y[i]:
                    assert math.isinf(float(m[i, j]))
                    continue
                d = w[y[i]] - w[j]
                exact = float(flat_lo[i] @ d.clamp(min=0) + flat_hi[i] @ d.clamp(max=0) + b[y[i]] - b[j])
                assert float(m[i, j]) == pytest.approx(exact, abs=1e-10)


@pytest.mark.parametrize("name", sorted(NETS))
def test_crown_is_at_least_as_tight_as_ibp(name: str) -> None:
    model = NETS[name]
    torch.manual_seed(3)
    x = torch.rand(5, *model.info.input_shape, dtype=torch.float64)
    y = model(x).argmax(1)
    b = Bounder(model)
    for eps in (0.01, 0.05, 0.2):
        ibp, mixed, crown = (b.margins(x, y, eps, m) for m in METHODS)
        assert (mixed >= ibp - 1e-9).all() and (crown >= mixed - 1e-9).all()
    # at a tiny radius both certify the clean prediction; at the whole pixel range neither does
    assert certified(b.margins(x, y, 1e-6, "crown")).all()
    assert not certified(b.margins(x, y, 1.0, "ibp")).any()


def test_crown_spec_chunking_does_not_change_the_bound() -> None:
    model = NETS["cnn"]
    torch.manual_seed(4)
    x = torch.rand(3, *model.info.input_shape, dtype=torch.float64)
    y = torch.tensor([0, 1, 2])
    b = Bounder(model)
    torch.testing.assert_close(b.margins(x, y, 0.05, "crown", max_rows=7), b.margins(x, y, 0.05, "crown"))


def test_ibp_bounds_carry_gradients_to_the_weights() -> None:
    model = build_model(ModelInfo("fastnet", "mnist", (1, 28, 28), tuple(str(i) for i in range(10)), (0.5,), (0.5,)))
    x = torch.rand(2, 1, 28, 28)
    m = Bounder(model).margins(x, torch.tensor([1, 2]), 0.1)
    m.masked_fill(torch.isinf(m), 0).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


@pytest.mark.parametrize("arch", ["smallcnn", "lenet5", "fastnet"])
def test_the_lab_cnns_are_bounded(arch: str) -> None:
    info = ModelInfo(arch, "mnist", (1, 28, 28), tuple(str(i) for i in range(10)), (0.1307,), (0.3081,))
    model = build_model(info).eval()
    x = torch.rand(2, 1, 28, 28)
    y = model(x).argmax(1)
    # full CROWN is a backward pass per unstable neuron: minutes for SmallCNN's 28x28 convs here
    for method in METHODS if arch == "fastnet" else ("ibp", "crown-ibp"):
        m = Bounder(model).margins(x, y, 0.001, method)
        assert m.shape == (2, 10) and torch.isfinite(m.masked_fill(torch.isinf(m), 0)).all()


def test_unsupported_operations_are_named() -> None:
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 4), nn.Sigmoid(), nn.Linear(4, 3))
    model = LabModel(net, _info((1, 4, 4), 3)).eval()
    with pytest.raises(LabError, match="Sigmoid"):
        Bounder(model).margins(torch.rand(1, 1, 4, 4), torch.tensor([0]), 0.1)

    class Product(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return (x * x).flatten(1)[:, :3]

    with pytest.raises(LabError, match="several input-dependent"):
        Bounder(LabModel(Product(), _info((1, 4, 4), 3))).margins(torch.rand(1, 1, 4, 4), torch.tensor([0]), 0.1)
    bn = LabModel(nn.Sequential(nn.BatchNorm2d(1), nn.Flatten(), nn.Linear(16, 3)), _info((1, 4, 4), 3)).train()
    with pytest.raises(LabError, match="training mode"):
        Bounder(bn).margins(torch.rand(2, 1, 4, 4), torch.tensor([0, 1]), 0.1)
