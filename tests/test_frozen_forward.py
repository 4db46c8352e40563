"""lab.models.frozen: the TorchScript inference copy Square queries in ``autoattack-fast`` is used
only where it answers like the model, and is rebuilt when the weights change."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from attacks import ATTACKS
from lab.core.errors import LabError
from lab.models.frozen import AGREE_ATOL, inference_forward


def test_a_cnn_gets_a_copy_with_the_same_logits(trained_fastnet) -> None:
    m, x = trained_fastnet.model, trained_fastnet.x
    fwd = inference_forward(m, x)
    assert fwd is not m
    with torch.no_grad():
        other = x.flip(0)[:17] * 0.5  # images and a batch size it was not traced on
        assert float((fwd(other) - m(other)).abs().max()) <= AGREE_ATOL
    assert inference_forward(m, x) is fwd  # cached


def test_a_change_of_weights_builds_a_new_copy(trained_fastnet) -> None:
    m, x = trained_fastnet.model, trained_fastnet.x
    fwd = inference_forward(m, x)
    p = next(m.parameters())
    with torch.no_grad():
        p.mul_(1.0)  # an in-place write: the version counter moves
    assert inference_forward(m, x) is not fwd


class _Randomized(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1) + 0.1 * torch.randn_like(x.flatten(1)))


class _Numpy(nn.Module):
    """Data-dependent Python a trace would bake in as constants."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = torch.from_numpy(np.round(x.detach().cpu().numpy() * 4) / 4)
        return self.fc(q.flatten(1))


def test_randomized_and_untraceable_models_get_themselves() -> None:
    x = torch.rand(8, 1, 2, 2)
    for m in (_Randomized().eval(), _Numpy().eval()):
        assert inference_forward(m, x) is m


def test_square_with_the_copy_and_chunks_still_fools(trained_fastnet) -> None:
    m, x, y = trained_fastnet.model, trained_fastnet.x[:20], trained_fastnet.y[:20]
    sq = ATTACKS.get("square")(eps=0.1, n_queries=50, chunk=8, fast_forward=True)
    with torch.no_grad():
        before = float((m(x).argmax(1) == y).float().mean())
        after = float((m(sq(m, x, y)).argmax(1) == y).float().mean())
    assert after < before
    assert sq.config()["chunk"] == 8 and sq.config()["fast_forward"] is True
    try:
        ATTACKS.get("square")(eps=0.1, chunk=-1)
    except LabError as e:
        assert "chunk must be a whole number" in str(e)
    else:
        raise AssertionError("a negative chunk was accepted")
