"""Denoiser recipes end to end through the real ``lab`` console script: every shipped
``configs/mnist_<denoiser>.toml`` trains (or assembles) a tiny job against a named
classifier, records it, loads back as a denoised model and is evaluated with its threat
rows; bad ``[denoiser]`` input is one sentence and exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from defenses.denoisers import DENOISERS, Denoised
from lab.evaluation.report import RobustnessReport
from lab.training import checkpoint as ckpt
from lab.training.config import from_dict
from lab.training.loop import train
from tests.cli_helpers import ROOT, assert_user_error, run_lab

#: fp32 training whatever the CPU (auto picks bf16 where the CPU has it natively)
TINY = ["--set", "data.train_subset=256", "--set", "data.test_subset=128", "--set", "runtime.device=cpu",
        "--set", "runtime.precision=fp32", "--no-progress"]  # fmt: skip
RECIPES = sorted(p.stem for p in (ROOT / "configs").glob("mnist_*.toml")
                 if "[denoiser]" in p.read_text())  # fmt: skip


@pytest.fixture(scope="module")
def mnist_classifier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A FastNet trained for one epoch on 2,048 MNIST images (the classifier the recipes name)."""
    cfg = from_dict({"data": {"dataset": "mnist", "train_subset": 2048, "test_subset": 256},
                     "model": {"arch": "fastnet"},
                     "train": {"epochs": 1, "batch_size": 64, "optimizer": "adam", "lr": 0.003}},
                    ["runtime.device=cpu", "runtime.precision=fp32"])  # fmt: skip
    run = tmp_path_factory.mktemp("mnist_fastnet")
    train(cfg, run, progress=False)
    return run


def test_every_denoiser_has_a_recipe() -> None:
    named = {from_dict_name(r) for r in RECIPES}
    assert named == set(DENOISERS.names())


def from_dict_name(recipe: str) -> str:
    import tomllib

    return str(tomllib.loads((ROOT / "configs" / f"{recipe}.toml").read_text())["denoiser"]["name"])


@pytest.mark.parametrize("recipe", RECIPES)
def test_recipe_trains_loads_and_evaluates_with_its_threat_rows(recipe: str, mnist_classifier: Path,
                                                                tmp_path: Path) -> None:  # fmt: skip
    name = from_dict_name(recipe)
    cls = DENOISERS.get(name)
    out = tmp_path / recipe
    cheap = ["--set", "train.epochs=1", "--set", "denoiser.attack_steps=2"] if cls.trainable else []
    proc = run_lab("train", "--config", f"configs/{recipe}.toml", *TINY, *cheap,
                   "--set", f"denoiser.classifier={mnist_classifier}", "--out", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((out / ckpt.SIDECAR_FILE).read_text())
    assert record["status"] == "complete"
    assert record["defense"]["kind"] == "denoiser" and record["defense"]["name"] == name
    assert record["defense"]["classifier"]["path"] == str(mnist_classifier)
    assert record["training"]["epochs_completed"] == (1 if cls.trainable else 0)
    assert record["model"]["arch"] == f"{name}+fastnet"

    listing = run_lab("models", str(tmp_path))
    assert listing.returncode == 0 and name in listing.stdout and f"{name}+fastnet" in listing.stdout

    model = ckpt.load_model(out).model
    assert isinstance(model, Denoised) and model.denoiser.name == name
    original = ckpt.load_model(mnist_classifier).model
    for (k, v) in original.state_dict().items():  # the classifier travels inside, unchanged
        assert torch.equal(model.classifier.state_dict()[k], v)

    proc = run_lab("eval", "--model", str(out), "--attack", "fgsm", "--eps", "0,0.2", "--n", "32", "--no-checks",
                   "--no-progress")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "gray-box" in proc.stdout and "per image over every attack of all" in proc.stdout
    report = RobustnessReport.load(out / "eval" / "fgsm-linf" / "report.json")
    rows = [t["name"] for t in report.threat_rows]
    assert rows[:2] == ["gray-box", "white-box"]
    assert ("bpda" in rows) == (not cls.differentiable) and ("eot" in rows) == cls.randomized
    last = report.results[-1]  # the per-image worst case over every row: never above the lowest row
    assert last.robust_accuracy <= min(last.rows.values())
    assert last.robust_accuracy == pytest.approx(len(last.robust_examples) / report.n)


def test_denoiser_run_resumes(mnist_classifier: Path, tmp_path: Path) -> None:
    out = tmp_path / "dae"
    base = ["--config", "configs/mnist_dae.toml", *TINY, "--set", "denoiser.attack_steps=1",
            "--set", f"denoiser.classifier={mnist_classifier}", "--out", str(out)]  # fmt: skip
    assert run_lab("train", *base, "--set", "train.epochs=1").returncode == 0
    proc = run_lab("train", *base, "--set", "train.epochs=2", "--resume")
    assert proc.returncode == 0, proc.stderr[-2000:]
    record = json.loads((out / ckpt.SIDECAR_FILE).read_text())
    assert record["training"]["epochs_completed"] == 2 and len(record["training"]["history"]) == 2


@pytest.mark.parametrize(("overrides", "fragment"), [
    (["--set", "denoiser.name=daee"], "unknown denoiser 'daee'"),
    (["--set", "denoiser.classifier="], "denoiser.classifier is required"),
    (["--set", "denoiser.classifier=/nonexistent/run"], "does not exist"),
    (["--set", "denoiser.quality=50"], "denoiser.quality is a setting of jpeg; dae does not use it"),
    (["--set", "denoiser.attack_eps=1.5"], "denoiser.attack_eps must be between 0 and 1"),
    (["--set", "defense.name=pgd_at", "--set", "defense.eps=0.3"], "either a defense"),
])  # fmt: skip
def test_bad_denoiser_recipes_are_one_sentence_and_exit_2(overrides: list[str], fragment: str,
                                                          tmp_path: Path) -> None:  # fmt: skip
    proc = run_lab("train", "--config", "configs/mnist_dae.toml", *TINY, *overrides, "--out", str(tmp_path / "x"))
    assert_user_error(proc, fragment)
    assert not (tmp_path / "x").exists()


def test_a_classifier_of_other_data_is_refused(trained_fastnet, tmp_path: Path) -> None:
    proc = run_lab("train", "--config", "configs/mnist_median.toml", *TINY,
                   "--set", f"denoiser.classifier={trained_fastnet.run}", "--out", str(tmp_path / "x"))  # fmt: skip
    assert_user_error(proc, "was trained on fashion-mnist, not on this recipe's mnist")
    assert not (tmp_path / "x").exists()
