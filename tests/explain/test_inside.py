"""Inside the network: every layer's output for an image and its adversarial version, the
drift between them layer by layer, the first layer's filters; ``lab explain --layers``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from cli_helpers import assert_user_error, run_lab
from explain_helpers import info
from torch import nn

from explain.inside import forward_layers, inside_network, relative_l2
from lab.core.errors import LabError
from lab.models import LabModel


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3, padding=1)
        self.act = nn.ReLU()
        self.drop = nn.Dropout(0.5)
        self.flat = nn.Flatten()
        self.fc = nn.Linear(3 * 8 * 8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.flat(self.drop(self.act(self.conv(x)))))


def tiny() -> LabModel:
    torch.manual_seed(0)
    return LabModel(_Net(), info("tiny", side=8, classes=4)).eval()


def test_layers_in_running_order_without_dropout_or_flatten() -> None:
    m = tiny()
    assert forward_layers(m, torch.rand(1, 1, 8, 8)) == ["net.conv", "net.act", "net.fc"]


def test_known_values_on_a_tiny_network() -> None:
    m = tiny()
    x = torch.rand(2, 1, 8, 8)
    x_adv = (x + 0.1 * torch.sign(torch.randn_like(x))).clamp(0, 1)
    v = inside_network(m, x, x_adv)
    assert v.layers == ["net.conv", "net.act", "net.fc"] and v.kinds == ["Conv2d", "ReLU", "Linear"]
    assert v.shapes == [(3, 8, 8), (3, 8, 8), (4,)] and v.spatial() == [0, 1]
    with torch.no_grad():
        mean, std = m.mean, m.std  # the in-model normalization comes before the first layer
        z, za = m.net.conv((x - mean) / std), m.net.conv((x_adv - mean) / std)
        logits, logits_adv = m(x), m(x_adv)
    assert torch.allclose(v.clean[0], z, atol=1e-6) and torch.allclose(v.adversarial[0], za, atol=1e-6)
    assert torch.allclose(v.clean[1], z.relu(), atol=1e-6)
    assert torch.allclose(v.clean[2], logits, atol=1e-5) and torch.allclose(v.adversarial[2], logits_adv, atol=1e-5)
    want = (za - z).flatten(1).norm(dim=1) / z.flatten(1).norm(dim=1)
    assert torch.allclose(v.drift[0], want, rtol=1e-5)
    assert torch.allclose(v.input_drift, (x_adv - x).flatten(1).norm(dim=1) / x.flatten(1).norm(dim=1), rtol=1e-5)
    assert v.first_conv == "net.conv" and torch.equal(v.filters, m.net.conv.weight.detach())
    same = inside_network(m, x, x.clone())
    assert torch.count_nonzero(same.drift) == 0 and torch.count_nonzero(same.input_drift) == 0
    assert m.training is False and all(p.requires_grad for p in m.parameters())


def test_relative_l2_edge_cases() -> None:
    zero = torch.zeros(1, 3)
    assert float(relative_l2(zero, zero)[0]) == 0.0
    assert relative_l2(zero, torch.ones(1, 3))[0].isinf()
    assert float(relative_l2(torch.ones(1, 4), torch.full((1, 4), 2.0))[0]) == pytest.approx(1.0)


def test_refuses_mismatched_images_and_unknown_layers() -> None:
    m = tiny()
    with pytest.raises(LabError, match="differ in shape"):
        inside_network(m, torch.rand(1, 1, 8, 8), torch.rand(2, 1, 8, 8))
    with pytest.raises(LabError, match="no layer 'net.nope'"):
        inside_network(m, torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8), layers=["net.nope"])


def test_cli_layers_compares_two_models(trained_fastnet, tmp_path: Path) -> None:
    out = tmp_path / "inside"
    run = str(trained_fastnet.run)
    proc = run_lab("explain", "--layers", "--compare", run, run, "--images", "3", "--eps", "0.1", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "relative L2 drift" in proc.stdout and "features.3" in proc.stdout
    data = json.loads((out / "layers.json").read_text())
    assert data["format"] == "lab-inside" and len(data["models"]) == 2
    a, b = data["models"]
    assert a["eps"] == 0.1 and a["attack"]["name"] == "pgd"
    assert [r["layer"] for r in a["layers"]][:3] == ["input", "net.features.0", "net.features.1"]
    assert a["layers"][-1]["shape"] == [10]  # the logits
    assert all(r["drift"] >= 0 for r in a["layers"]) and a["layers"][0]["drift"] > 0
    # the same model, the same seeded attack: the same curve
    assert [r["drift"] for r in a["layers"]] == pytest.approx([r["drift"] for r in b["layers"]], rel=1e-4)
    for name in ("layers_drift.png", "layers_0_maps.png", "layers_1_maps.png", "layers_0_filters.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(("extra", "fragment"), [
    (["--method", "saliency"], "takes no --method"),
    (["--attack", "magic"], "magic"),
    (["--eps", "2"], "eps"),
])  # fmt: skip
def test_cli_layers_bad_inputs_exit_2(trained_fastnet, tmp_path: Path, extra: list[str], fragment: str) -> None:
    proc = run_lab("explain", "--layers", "--model", str(trained_fastnet.run), *extra, "--out", str(tmp_path / "x"))
    assert_user_error(proc, fragment)
    assert not (tmp_path / "x").exists()


def test_cli_without_method_or_layers_says_what_to_give(trained_fastnet, tmp_path: Path) -> None:
    proc = run_lab("explain", "--model", str(trained_fastnet.run), "--out", str(tmp_path / "x"))
    assert_user_error(proc, "needs --method")
