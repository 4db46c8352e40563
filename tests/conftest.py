"""Shared fixtures: a small model trained for real on a Fashion-MNIST subset, and a tiny
finished sweep (tests/experiments and the dashboard's Experiments page read it)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from lab.data import load_dataset
from lab.experiments.spec import load_spec
from lab.experiments.sweep import run_sweep
from lab.models import LabModel
from lab.training.config import from_dict
from lab.training.loop import train
from tests.experiments.sweep_helpers import tiny_sweep


@dataclass
class Trained:
    model: LabModel
    run: Path
    x: torch.Tensor  # 64 test images in [0, 1]
    y: torch.Tensor


@pytest.fixture(scope="session")
def trained_fastnet(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """FastNet after 3 epochs on 4,096 Fashion-MNIST images (~80% test accuracy, ~3 s).

    Trained in fp32 whatever the CPU: ``runtime.precision=auto`` would train in bf16 where
    the CPU has it natively, and the model (so every accuracy and margin the tests read off
    it) would depend on the machine. The attacks and explainers still run at their own
    precision (bf16 steering where available unless ``LAB_PRECISION=fp32``); the margins
    of the tests that depend on this model were measured both ways over training seeds 0-4
    (``seed`` below) and say so where they are asserted.
    """
    cfg = from_dict(
        {"seed": 0,
         "data": {"dataset": "fashion-mnist", "train_subset": 4096, "test_subset": 512},
         "model": {"arch": "fastnet"},
         "train": {"epochs": 3, "batch_size": 64, "optimizer": "adam", "lr": 0.002, "schedule": "constant"}},
        ["runtime.device=cpu", "runtime.precision=fp32"],
    )  # fmt: skip
    run = tmp_path_factory.mktemp("fastnet")
    result = train(cfg, run, progress=False)
    ds = load_dataset("fashion-mnist")
    x = torch.from_numpy(ds.test_x[:64]).float() / 255
    y = torch.from_numpy(ds.test_y[:64])
    return Trained(result.model.eval(), run, x, y)


@pytest.fixture(scope="session")
def finished_sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """``(sweep file, sweep folder)``: :func:`tests.experiments.sweep_helpers.tiny_sweep` with two
    seeds and saliency maps, run to the end: 12 cells (4 trainings, 4 evaluations, 4
    explanations), about a minute on two cores. Tests that change it work on a copy."""
    base = tmp_path_factory.mktemp("sweep")
    spec = tiny_sweep(base, seeds=(0, 1), explain=("saliency",))
    out = base / "out"
    res = run_sweep(load_spec(spec), out, progress=False)
    assert not res.failed and not res.blocked, res
    return spec, out
