"""The catastrophic-overfitting guard: it fires on a constructed collapse (PGD accuracies
injected through :meth:`CollapseGuard.measure`), rolls back to the best epoch's weights or
stops, says so in the log and the checkpoint, and its state survives a resume. Also: a
resumed adversarial run ends with the same weights as an uninterrupted one."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch

from defenses.guard import CollapseGuard
from lab.training import checkpoint as ckpt
from lab.training.config import RunConfig, from_dict
from lab.training.loop import train


def tiny(epochs: int, **defense: object) -> RunConfig:
    """fastnet, 512 Fashion-MNIST images, FGSM-RS at eps 0.1: a fraction of a second per epoch."""
    return from_dict(
        {"data": {"dataset": "fashion-mnist", "train_subset": 512, "test_subset": 128},
         "model": {"arch": "fastnet"},
         "train": {"epochs": epochs, "batch_size": 64, "optimizer": "adam", "lr": 0.002, "schedule": "constant"},
         "defense": {"name": "fgsm_rs", "eps": 0.1, "guard_batch": 64, **defense}},
        ["runtime.device=cpu", "runtime.precision=fp32"],  # fp32 whatever the CPU
    )  # fmt: skip


@pytest.fixture
def pgd_accs(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Queue PGD accuracies for the guard to 'measure', one per epoch."""
    queue: list[float] = []

    def fake(self: CollapseGuard, model: torch.nn.Module) -> float:
        assert queue, "the guard measured more epochs than the test queued"
        return queue.pop(0)

    monkeypatch.setattr(CollapseGuard, "measure", fake)
    return queue


def weights(run: Path) -> dict[str, torch.Tensor]:
    return ckpt.load_tensors(run / ckpt.MODEL_FILE)[0]


def assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k, v in a.items():
        torch.testing.assert_close(v, b[k], rtol=0, atol=0, msg=f"{k} differs")


def record(run: Path) -> dict:  # type: ignore[type-arg]
    return json.loads((run / ckpt.SIDECAR_FILE).read_text())


def test_judge_finds_the_drop_and_the_floor() -> None:
    def guard(**kw: float) -> CollapseGuard:
        x, y = torch.zeros(1, 1, 4, 4), torch.zeros(1, dtype=torch.int64)
        return CollapseGuard(mode="rollback", drop=0.2, floor=kw.get("floor", 0.0), attack=None, x=x, y=y,  # type: ignore[arg-type]
                             judge_from=int(kw.get("judge_from", 1)))  # fmt: skip

    g = guard()
    snaps = iter(range(100))

    def take() -> tuple[dict[str, torch.Tensor], dict[str, object]]:
        return {"model.w": torch.tensor(float(next(snaps)))}, {}

    assert g.judge(1, 0.6, take) is None and g.best_epoch == 1
    assert g.judge(2, 0.65, take) is None and g.best_epoch == 2
    event = g.judge(3, 0.05, take)
    assert event is not None and (event.epoch, event.best_epoch, event.restored_epoch) == (3, 2, 2)
    assert event.pgd_acc == 0.05 and event.best_pgd_acc == 0.65 and "60.0 points below the best" in event.reason
    assert g.best is not None and float(g.best[0]["model.w"]) == 1.0, "the snapshot is the best epoch's"
    assert g.judge(4, 0.5, take) is None, "a drop of 15 points is within guard_drop"

    g = guard(floor=0.3)
    assert g.judge(1, 0.35, take) is None
    event = g.judge(2, 0.29, take)
    assert event is not None and "below guard_floor 0.3" in event.reason

    g = guard(judge_from=3)  # epochs inside the eps warm-up are measured, not judged
    assert g.judge(1, 0.6, take) is None and g.judge(2, 0.0, take) is None and g.judge(3, 0.0, take) is not None


def test_rollback_restores_the_best_epoch_and_survives_a_resume(pgd_accs: list[float], tmp_path: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    """[0.6, 0.65] then, after a resume, 0.05: epoch 3 is rolled back to epoch 2's weights,
    which only the train state remembered."""
    run = tmp_path / "run"
    pgd_accs[:] = [0.6, 0.65]
    train(tiny(2), run, progress=False)
    epoch2 = weights(run)
    optim2 = {k: v for k, v in ckpt.load_tensors(run / ckpt.STATE_FILE)[0].items() if k.startswith("optim.")}
    assert record(run)["defense"]["guard"]["best_epoch"] == 2

    pgd_accs[:] = [0.05]
    with caplog.at_level(logging.WARNING, logger="lab.training.loop"):
        train(None, run, resume=True, overrides=("train.epochs=3",), progress=False)
    assert not pgd_accs
    assert_same(weights(run), epoch2)
    state = ckpt.load_tensors(run / ckpt.STATE_FILE)[0]
    assert_same({k: v for k, v in state.items() if k.startswith("optim.")}, optim2)  # Adam's moments too
    warning = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "catastrophic overfitting at epoch 3" in warning and "rolled back to the weights of epoch 2" in warning

    rec = record(run)
    assert rec["status"] == "complete" and rec["defense"]["name"] == "fgsm_rs"
    (event,) = rec["defense"]["guard_events"]
    assert event["epoch"] == 3 and event["action"] == "rollback" and event["restored_epoch"] == 2
    assert event["pgd_acc"] == 0.05 and event["best_pgd_acc"] == 0.65 and event["best_epoch"] == 2
    assert rec["defense"]["guard"]["pgd_acc"] == {"1": 0.6, "2": 0.65, "3": 0.05}
    history = rec["training"]["history"]
    assert [h.get("restored_epoch") for h in history] == [None, None, 2]
    assert [h["guard_pgd_acc"] for h in history] == [0.6, 0.65, 0.05]


def test_rollback_keeps_training_from_the_best_epoch(pgd_accs: list[float], tmp_path: Path) -> None:
    pgd_accs[:] = [0.6, 0.65, 0.05, 0.66]
    train(tiny(4), tmp_path / "run", progress=False)
    rec = record(tmp_path / "run")
    assert rec["status"] == "complete" and rec["training"]["epochs_completed"] == 4
    assert len(rec["defense"]["guard_events"]) == 1 and rec["defense"]["guard"]["best_epoch"] == 4


def test_stop_ends_training_with_the_best_weights(pgd_accs: list[float], tmp_path: Path) -> None:
    ref = tmp_path / "ref"  # the same trajectory (constant lr) stopped by the recipe after epoch 2
    pgd_accs[:] = [0.6, 0.65]
    train(tiny(2, guard="stop"), ref, progress=False)

    run = tmp_path / "run"
    pgd_accs[:] = [0.6, 0.65, 0.05]
    result = train(tiny(5, guard="stop"), run, progress=False)
    assert not pgd_accs and len(result.history) == 3
    assert_same(weights(run), weights(ref))
    rec = record(run)
    assert rec["status"] == "stopped_early" and rec["training"]["epochs_completed"] == 3
    assert rec["defense"]["guard_events"][0]["action"] == "stop"

    before = (run / ckpt.MODEL_FILE).read_bytes()  # a stopped run stays stopped on --resume
    train(None, run, resume=True, progress=False)
    assert (run / ckpt.MODEL_FILE).read_bytes() == before


def test_the_real_measurement_is_a_pgd_accuracy(tmp_path: Path) -> None:
    train(tiny(1, eps=0.05), tmp_path / "run", progress=False)
    guard = record(tmp_path / "run")["defense"]["guard"]
    assert guard["measures"] == "PGD-10 (linf 0.05) on 64 training images"
    assert 0.0 <= guard["pgd_acc"]["1"] <= 1.0


@pytest.mark.parametrize("name", ["pgd_at", "trades", "fgsm_rs"])
def test_resumed_adversarial_run_equals_the_uninterrupted_one(tmp_path: Path, name: str) -> None:
    extra = {"steps": 2} if name != "fgsm_rs" else {}
    cfg = tiny(2, name=name, guard="off", eps_warmup_epochs=0.5, **extra)
    train(cfg, tmp_path / "ref", progress=False)
    train(tiny(1, name=name, guard="off", eps_warmup_epochs=0.5, **extra), tmp_path / "run", progress=False)
    train(None, tmp_path / "run", resume=True, overrides=("train.epochs=2",), progress=False)
    a, b = weights(tmp_path / "ref"), weights(tmp_path / "run")
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6, msg=f"{k} differs after resume")


def test_a_recipe_that_never_learns_robustness_is_stopped_at_once(pgd_accs: list[float], tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    """Wong et al.'s MNIST recipe here: PGD accuracy ~1% from epoch 1 on, so no epoch is
    healthy to roll back to. With guard_floor, the guard stops at the first judged epoch
    (even in rollback mode), keeps those weights and says why."""
    run = tmp_path / "run"
    pgd_accs[:] = [0.012]
    with caplog.at_level(logging.WARNING, logger="lab.training.loop"):
        result = train(tiny(5, guard_floor=0.3), run, progress=False)
    assert not pgd_accs and len(result.history) == 1
    rec = record(run)
    assert rec["status"] == "stopped_early" and rec["training"]["epochs_completed"] == 1
    (event,) = rec["defense"]["guard_events"]
    assert event["action"] == "stop" and event["restored_epoch"] == 1 and event["pgd_acc"] == 0.012
    assert "no earlier epoch above it to roll back to" in event["reason"]
    warning = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "catastrophic overfitting at epoch 1" in warning and "not learning robustness" in warning


def test_the_floor_rule_waits_for_a_healthy_epoch_to_exist() -> None:
    x, y = torch.zeros(1, 1, 4, 4), torch.zeros(1, dtype=torch.int64)
    g = CollapseGuard(mode="rollback", drop=0.2, floor=0.3, attack=None, x=x, y=y)  # type: ignore[arg-type]
    take = lambda: ({"model.w": torch.zeros(())}, {})  # noqa: E731
    assert g.judge(1, 0.5, take) is None
    event = g.judge(2, 0.1, take)  # healthy epoch 1 exists: roll back to it
    assert event is not None and event.action == "rollback" and event.restored_epoch == 1
