"""Helpers for the dashboard's tests: the tiny runs folder's pieces, images, subprocess env."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from lab.core.errors import LabError
from lab.training.config import from_dict
from lab.training.loop import train
from tests.experiments.sweep_helpers import tiny_sweep

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app.py"
PAGES = "lab/dashboard/pages"

TINY_DATA = {"dataset": "mnist", "train_subset": 2048, "test_subset": 256}
TINY_TRAIN = {"epochs": 2, "batch_size": 64, "optimizer": "adam", "lr": 0.003, "schedule": "constant"}
#: test models train in fp32 whatever the CPU (auto would pick bf16 where the CPU has it natively,
#: and the models, and so every number the tests read off them, would depend on the machine)
FP32 = ["runtime.device=cpu", "runtime.precision=fp32"]


@dataclass
class DashRuns:
    root: Path
    standard: Path
    hardened: Path
    broken: Path
    report: Path
    explanations: Path
    denoised: Path | None  # a bit-depth denoiser in front of mnist_std, once defenses.denoisers exists
    attention: Path  # attention_cnn, 1 epoch on 512 images


def tiny_train(out: Path, *, epochs: int = 2, defense: dict[str, object] | None = None, subset: int = 2048,
               arch: str = "fastnet") -> Path:  # fmt: skip
    values: dict[str, object] = {"data": dict(TINY_DATA, train_subset=subset), "model": {"arch": arch},
                                 "train": dict(TINY_TRAIN, epochs=epochs)}  # fmt: skip
    if defense:
        values["defense"] = defense
    train(from_dict(values, FP32), out, progress=False)
    return out


def png_bytes(size: tuple[int, int], mode: str = "L", fmt: str = "PNG", color: int | tuple[int, ...] = 0) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, color).save(buf, format=fmt)
    return buf.getvalue()


def threads_env() -> dict[str, str]:
    """The environment for subprocesses: one thread each (the machine is shared)."""
    return dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")


def tiny_denoiser(out: Path, classifier: Path) -> Path | None:
    """A parameter-free bit-depth denoiser in front of ``classifier`` (None while the lab has
    no denoisers: the defenses issue adds them)."""
    try:
        import defenses.denoisers  # noqa: F401
    except ImportError:
        return None
    try:
        cfg = from_dict({"name": "mnist_bit_depth", "data": {"dataset": "mnist", "test_subset": 256},
                         "denoiser": {"name": "bit_depth", "classifier": str(classifier), "bits": 1}},
                        FP32)  # fmt: skip
        train(cfg, out, progress=False)
    except LabError:  # an older lab without the [denoiser] recipe section
        return None
    return out


def small_sweep(folder: Path, seeds: tuple[int, ...] = (0, 1)) -> Path:
    """The Experiments page's sweep file: the session's tiny sweep (tests/conftest.py's
    ``finished_sweep``) with these seeds, so its cells share the session sweep's keys."""
    return tiny_sweep(folder, seeds=seeds, explain=("saliency",))
