"""``lab train`` end to end through the real console script: a smoke run on real data,
kill -9 and resume, DDP under torchrun, and every bad input as one sentence + exit 2."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from cli_helpers import BIN, LAB, ROOT, assert_user_error
from cli_helpers import run_lab as _run_lab

from lab.cli import main
from lab.training import checkpoint as ckpt

RECIPE = str(ROOT / "configs" / "mnist_smallcnn.toml")


def run_lab(*args: str) -> subprocess.CompletedProcess[str]:
    """Training runs keep torch's default threads (the kill test needs real epochs)."""
    return _run_lab(*args, timeout=300, threads=None)
# A few seconds of real Fashion-MNIST (the system copy from Debian's dataset-fashion-mnist).
TINY = ["--set", "data.dataset=fashion-mnist", "--set", "data.train_subset=1024", "--set", "data.test_subset=256",
        "--set", "train.batch_size=64", "--set", "train.optimizer=adam", "--set", "train.lr=0.002",
        "--set", "train.schedule=constant", "--set", "runtime.precision=fp32", "--no-progress"]  # fmt: skip








@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One short real run shared by the tests below (2 epochs of 2,048 Fashion-MNIST images)."""
    out = tmp_path_factory.mktemp("runs") / "smoke"
    proc = run_lab("train", "--config", RECIPE, *TINY, "--set", "data.train_subset=2048",
                   "--set", "train.epochs=2", "--out", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "test accuracy" in proc.stdout
    return out


def test_smoke_run_trains_and_records_everything(trained: Path) -> None:
    record = json.loads((trained / "model.json").read_text())
    assert record["status"] == "complete"
    assert record["model"]["arch"] == "smallcnn" and record["model"]["dataset"] == "fashion-mnist"
    assert record["model"]["input_shape"] == [1, 28, 28] and len(record["model"]["class_names"]) == 10
    assert len(record["dataset"]["fingerprint"]) == 64 and record["model"]["dataset_fingerprint"]
    assert record["config"]["train"]["epochs"] == 2 and record["seed"] == 0
    assert set(record["versions"]) >= {"lab", "torch", "python"} and record["git_commit"]
    assert record["training"]["epochs_completed"] == 2 and len(record["training"]["history"]) == 2
    assert record["metrics"]["test_acc"] > 0.6  # 10 classes: chance is 0.1
    loaded = ckpt.load_model(trained)
    assert loaded.info.class_names[0] == "T-shirt/top"


def test_models_lists_the_run(trained: Path) -> None:
    proc = run_lab("models", str(trained.parent))
    assert proc.returncode == 0, proc.stderr
    assert "smoke" in proc.stdout and "fashion-mnist" in proc.stdout and "%" in proc.stdout


def test_existing_run_is_not_overwritten(trained: Path) -> None:
    before = (trained / "model.safetensors").read_bytes()
    proc = run_lab("train", "--config", RECIPE, *TINY, "--out", str(trained))
    assert_user_error(proc, "already holds a run")
    assert (trained / "model.safetensors").read_bytes() == before


def test_resume_of_a_finished_run_changes_nothing(trained: Path) -> None:
    before = (trained / "model.safetensors").read_bytes()
    proc = run_lab("train", "--out", str(trained), "--resume", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert "test accuracy" in proc.stdout
    assert (trained / "model.safetensors").read_bytes() == before


def _wait_for_epoch(out: Path, proc: subprocess.Popen[str], epochs: int, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        state = out / ckpt.STATE_FILE
        # an epoch's commit writes train_state, then the model file: wait for both
        if state.exists() and (out / ckpt.MODEL_FILE).exists():
            try:
                if ckpt.load_tensors(state)[1]["epochs_completed"] >= epochs:
                    return
            except Exception:  # noqa: BLE001 - being replaced right now; look again
                pass
        assert proc.poll() is None, f"training ended early: {proc.stderr.read() if proc.stderr else ''}"
        time.sleep(0.05)
    raise AssertionError("no epoch finished in time")


@pytest.mark.parametrize("delay", [0.0, 0.37])
def test_kill_and_resume_gives_the_uninterrupted_result(tmp_path: Path, delay: float) -> None:
    """SIGKILL after an epoch (and at an arbitrary moment after it): every file left is
    readable, and --resume ends with the same weights as a run that was never killed."""
    args = ["train", "--config", RECIPE, *TINY, "--set", "train.epochs=10", "--set", "data.train_subset=2048"]
    ref = tmp_path / "ref"
    assert run_lab(*args, "--out", str(ref)).returncode == 0

    out = tmp_path / "killed"
    proc = subprocess.Popen([LAB, *args, "--out", str(out)], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        _wait_for_epoch(out, proc, 1)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    done = ckpt.load_tensors(out / ckpt.STATE_FILE)[1]["epochs_completed"]
    assert 1 <= done < 10
    ckpt.load_model(out)  # whatever the moment of the kill, the model file is whole

    proc2 = run_lab("train", "--out", str(out), "--resume", "--no-progress")
    assert proc2.returncode == 0, proc2.stderr
    assert not list(out.glob(".*.tmp")), "stale temporary files were left behind"
    a = ckpt.load_tensors(ref / ckpt.MODEL_FILE)[0]
    b = ckpt.load_tensors(out / ckpt.MODEL_FILE)[0]
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6, msg=f"{k} differs after resume")
    history = json.loads((out / "model.json").read_text())["training"]["history"]
    assert [h["epoch"] for h in history] == list(range(1, 11))


def test_ddp_under_torchrun_on_cpu(tmp_path: Path) -> None:
    """Two gloo processes on the CPU: one checkpoint written by rank 0, training works."""
    torchrun = BIN / "torchrun"
    if not torchrun.exists():
        pytest.skip("torchrun not installed beside this Python")
    out = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [str(torchrun), "--standalone", "--nproc_per_node=2", "-m", "lab", "train", "--config", RECIPE, *TINY,
         "--set", "train.epochs=2", "--set", "model.arch=fastnet", "--out", str(out)],
        capture_output=True, text=True, timeout=300, cwd=ROOT, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((out / "model.json").read_text())
    assert record["training"]["world_size"] == 2
    assert record["metrics"]["test_acc"] > 0.5


# ---------------------------------------------------------------- bad input: one sentence, exit 2


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["train", "--config", RECIPE, "--set", "data.dataset=nope"], "unknown dataset 'nope'"),
        (["train", "--config", RECIPE, "--set", "model.arch=resnet9000"], "unknown model 'resnet9000'"),
        (["train", "--config", RECIPE, "--set", "train.lr=fast"], "train.lr must be a number, got 'fast'"),
        (["train", "--config", RECIPE, "--set", "train.nope=1"], "unknown config key 'train.nope'"),
        (["train", "--config", "configs/missing.toml"], "does not exist"),
        (["train"], "needs --config"),
        (["train", "--resume"], "--resume needs --out"),
        (["models", "/nonexistent/runs"], "does not exist"),
        (["data", "info", "imagenet"], "unknown dataset 'imagenet'"),
    ],
)
def test_bad_input_is_one_sentence_and_exit_2(args: list[str], fragment: str, capsys, tmp_path: Path) -> None:
    code = main([*args, "--out", str(tmp_path / "x")] if "--config" in args else args)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    assert fragment in err.strip().splitlines()[-1]
    assert not (tmp_path / "x" / "model.safetensors").exists()


def test_resume_without_a_run(tmp_path: Path, capsys) -> None:
    assert main(["train", "--out", str(tmp_path / "empty"), "--resume"]) == 2
    assert "nothing to resume" in capsys.readouterr().err


def test_cli_entry_point_reports_errors_without_traceback(tmp_path: Path) -> None:
    proc = run_lab("train", "--config", RECIPE, "--set", "data.dataset=nope", "--out", str(tmp_path / "r"))
    assert_user_error(proc, "unknown dataset")
    proc = subprocess.run([sys.executable, "-m", "lab", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0 and "train" in proc.stdout
