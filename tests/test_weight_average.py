"""``train.ema_decay``: the exponential moving average of the weights is the run's model, it
is the average the definition gives, and an interrupted run resumes it exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lab.core.errors import ConfigError
from lab.training import checkpoint as ckpt
from lab.training.config import from_dict
from lab.training.loop import train

BASE = {"seed": 0,
        "data": {"dataset": "fashion-mnist", "train_subset": 512, "test_subset": 128},
        "model": {"arch": "smallcnn"},
        "train": {"epochs": 2, "batch_size": 64, "optimizer": "adam", "lr": 0.002, "schedule": "constant",
                  "ema_decay": 0.9}}  # fmt: skip
FP32 = ["runtime.device=cpu", "runtime.precision=fp32"]


def test_the_saved_model_is_the_average_and_resume_is_exact(tmp_path: Path) -> None:
    ref = tmp_path / "ref"
    result = train(from_dict(BASE, FP32), ref, progress=False)
    state, record = ckpt.load_tensors(ref / ckpt.STATE_FILE)
    saved, _ = ckpt.load_tensors(ref / ckpt.MODEL_FILE)
    raw = {k[len("model.") :]: v for k, v in state.items() if k.startswith("model.")}
    avg = {k[len("ema.module.") :]: v for k, v in state.items() if k.startswith("ema.module.")}
    assert set(saved) == set(raw) == set(avg)
    assert all(torch.equal(saved[k], avg[k]) for k in saved)  # the model file holds the average
    assert any(not torch.allclose(saved[k], raw[k]) for k in saved)  # ... not the last weights
    assert int(state["ema.n_averaged"]) == 2 * 512 // 64  # one update per optimizer step
    sidecar = ckpt.load_model(ref)
    assert "moving average" in sidecar.record["training"]["weights"]
    # the returned model is the average too
    assert all(torch.equal(result.model.state_dict()[k].cpu(), saved[k]) for k in saved)

    half = tmp_path / "half"
    train(from_dict({**BASE, "train": {**BASE["train"], "epochs": 1}}, FP32), half, progress=False)
    train(None, half, resume=True, overrides=("train.epochs=2",), progress=False)
    again, _ = ckpt.load_tensors(half / ckpt.MODEL_FILE)
    for k in saved:
        torch.testing.assert_close(again[k], saved[k], rtol=1e-5, atol=1e-6, msg=f"{k} differs after resume")


def test_the_average_follows_its_definition(tmp_path: Path) -> None:
    """With decay d the average after the first step is that step's weights, then
    a <- d * a + (1 - d) * w after every step: replayed here from the saved raw weights of
    a one-step run and a second step."""
    one = {**BASE, "data": {**BASE["data"], "train_subset": 64}, "train": {**BASE["train"], "epochs": 1}}
    r1 = tmp_path / "one"
    train(from_dict(one, FP32), r1, progress=False)
    s1, _ = ckpt.load_tensors(r1 / ckpt.STATE_FILE)
    w1 = {k[len("model.") :]: v for k, v in s1.items() if k.startswith("model.")}
    m1, _ = ckpt.load_tensors(r1 / ckpt.MODEL_FILE)
    assert all(torch.equal(m1[k], w1[k]) for k in w1)  # one step: the average is those weights
    train(None, r1, resume=True, overrides=("train.epochs=2",), progress=False)
    s2, _ = ckpt.load_tensors(r1 / ckpt.STATE_FILE)
    w2 = {k[len("model.") :]: v for k, v in s2.items() if k.startswith("model.")}
    m2, _ = ckpt.load_tensors(r1 / ckpt.MODEL_FILE)
    for k in w2:
        if w2[k].is_floating_point():
            torch.testing.assert_close(m2[k], 0.9 * w1[k] + 0.1 * w2[k], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("bad", [1.0, -0.1])
def test_a_decay_out_of_range_is_one_sentence(bad: float) -> None:
    with pytest.raises(ConfigError, match=r"train.ema_decay must be in \[0, 1\)"):
        from_dict({**BASE, "train": {**BASE["train"], "ema_decay": bad}})
