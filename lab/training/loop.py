"""Training: a seeded, resumable loop with the speed path done once, here.

``train(cfg, out_dir)`` trains ``cfg.model.arch`` on ``cfg.data.dataset`` and writes a
run folder (see :mod:`lab.training.checkpoint`). What makes it fast:

* the dataset lives on the device as uint8 and is batched/augmented there
  (:class:`lab.data.device.DeviceData`), no DataLoader;
* bf16 autocast where the hardware has it (CUDA, and CPUs with native bf16), fp32
  master weights; channels_last memory format; ``zero_grad(set_to_none=True)``;
* no ``.item()`` in the hot loop: loss and accuracy accumulate on the device and are
  read only when the progress bar refreshes;
* optional ``torch.compile`` (``runtime.compile``) with a warm-up step before timing.

Adversarial training: the loop asks the recipe's defense (``[defense]``, see
:mod:`defenses`) for each step's loss instead of computing cross-entropy itself; with a
catastrophic-overfitting guard it measures PGD accuracy after each epoch and rolls back
to (or stops at) the best epoch on a collapse, saying so in the log and the checkpoint.

Every completed epoch is committed atomically to ``train_state.safetensors`` (weights,
optimizer, RNG, history) and ``model.safetensors``; ``resume=True`` continues from there
(:mod:`lab.training.state`). Under ``torchrun`` it runs DistributedDataParallel (NCCL on
GPUs, gloo on CPU; :mod:`lab.core.distributed`, :mod:`lab.training.distributed`); rank 0
writes the files. The device, the data, the model and its defense are set up by
:mod:`lab.training.setup`.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel

from defenses import CollapseGuard, Defense
from defenses.denoisers.training import DenoiserTraining
from defenses.inner import plain_module
from lab.core.distributed import Dist, barrier, dist_from_env, leave, mean_over_ranks, sum_over_ranks
from lab.core.progress import progress as progress_bar
from lab.core.runtime import autocast
from lab.data.device import DeviceData
from lab.models import LabModel
from lab.models.predict import accuracy
from lab.training.config import RunConfig
from lab.training.distributed import data_parallel
from lab.training.schedule import lr_at
from lab.training.setup import prepare
from lab.training.state import Resumed, RunWriter, load_resumed, make_ema, open_run, restore_state, snapshot

log = logging.getLogger(__name__)

__all__ = ["TrainResult", "snapshot", "train"]


@dataclass
class TrainResult:
    """A finished (or already complete) run: its folder, the model in eval mode, final metrics."""

    out_dir: Path
    model: LabModel
    metrics: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)
    wall_time_s: float = 0.0


def train(
    cfg: RunConfig | None,
    out_dir: str | os.PathLike[str],
    *,
    resume: bool = False,
    overrides: tuple[str, ...] = (),
    progress: bool = True,
) -> TrainResult:
    """Train a model from a recipe into ``out_dir`` (or continue it with ``resume=True``).

    ``cfg`` may be None only when resuming (the run's saved recipe is used, with
    ``overrides`` applied). Raises :class:`LabError` subclasses for user mistakes.
    """
    out = Path(out_dir)
    cfg, state_path = open_run(out, cfg, resume, overrides)
    dd = dist_from_env()
    p = prepare(cfg, dd)
    device, amp_dtype, ds, train_data, test_data = p.device, p.dtype, p.ds, p.train_data, p.test_data
    model, defense, guard, opt = p.model, p.defense, p.guard, p.opt
    trainable = any(p.requires_grad for p in model.parameters())
    ema = make_ema(model, cfg.train.ema_decay) if trainable else None
    run = Resumed()
    if state_path is not None:
        run = load_resumed(state_path, ds, model, opt, guard, device, ema)
        if dd.main:
            log.info("resuming %s after epoch %d", out, run.start_epoch)
    history, start_epoch, wall_before = run.history, run.start_epoch, run.wall_before

    step_fn = data_parallel(model, device, dd)
    if cfg.runtime.compile:
        step_fn = torch.compile(step_fn)  # type: ignore[assignment]
    per_rank_batch = max(1, cfg.train.batch_size // dd.world)
    steps_per_epoch = math.ceil(len(train_data) / (per_rank_batch * dd.world))
    total_steps = steps_per_epoch * cfg.train.epochs
    writer = RunWriter(out, cfg, ds, model, opt, defense, guard, device, amp_dtype, world=dd.world, main=dd.main,
                       ema=ema)  # fmt: skip
    judged: LabModel = ema.module if ema is not None else model  # type: ignore[assignment]  # what is evaluated and saved

    if start_epoch >= cfg.train.epochs:
        log.info("%s already completed %d epochs", out, start_epoch)
    stopped = guard is not None and guard.stopped
    if stopped and start_epoch < cfg.train.epochs:
        log.info("%s was stopped early by the catastrophic-overfitting guard after epoch %d", out, start_epoch)

    if cfg.runtime.compile and start_epoch < cfg.train.epochs:
        _warm_up(step_fn, train_data, per_rank_batch, device, amp_dtype, cfg)

    t_run = time.perf_counter()
    if not trainable:  # a parameter-free input transform: nothing to fit, the wrapped model is the run
        if start_epoch == 0 and state_path is None:
            log.info("%s has no parameters to train; saving the pipeline", cfg.detector["name"] or cfg.denoiser["name"])
            acc = accuracy(model, test_data, cfg.train.eval_batch_size) if dd.main else float("nan")
            writer.commit(0, 0.0, "complete", {"test_acc": acc}, history)
        stopped = True
    try:
        for epoch in range(start_epoch, cfg.train.epochs if not stopped else start_epoch):
            row = _train_epoch(cfg, step_fn, opt, train_data, epoch, steps_per_epoch, total_steps,
                               per_rank_batch, dd, device, amp_dtype, progress, defense, ema)  # fmt: skip
            barrier(dd)
            if guard is not None:
                stopped = _guard_check(guard, epoch + 1, model, opt, row, dd, device)
            row["test_acc"] = accuracy(judged, test_data, cfg.train.eval_batch_size) if dd.main else float("nan")
            history.append(row)
            if dd.main:
                log.info(
                    "epoch %d/%d  loss %.4f  train-acc %.4f  test-acc %.4f  %.0f img/s",
                    epoch + 1, cfg.train.epochs, row["loss"], row["train_acc"], row["test_acc"], row["images_per_s"],
                )  # fmt: skip
            wall = wall_before + time.perf_counter() - t_run
            done = epoch + 1 == cfg.train.epochs
            metrics = {"test_acc": row["test_acc"], "train_loss": row["loss"], "train_acc": row["train_acc"]}
            if "guard_pgd_acc" in row:
                metrics["guard_pgd_acc"] = row["guard_pgd_acc"]
            writer.commit(epoch + 1, wall, "stopped_early" if stopped else "complete" if done else "running", metrics,
                          history)  # fmt: skip
            if stopped:
                break
    except KeyboardInterrupt:
        if dd.main:
            log.warning("interrupted; finished epochs are saved in %s (continue with --resume)", out)
        raise
    finally:
        leave(dd)

    opt.zero_grad(set_to_none=True)  # hand back a model without stale gradients
    wall = wall_before + time.perf_counter() - t_run
    final_acc = accuracy(judged, test_data, cfg.train.eval_batch_size)
    metrics = {"test_acc": final_acc}
    if history:
        metrics.update(train_loss=history[-1]["loss"], train_acc=history[-1]["train_acc"])
    return TrainResult(out_dir=out, model=judged.eval(), metrics=metrics, history=history, wall_time_s=wall)


def _guard_check(guard: CollapseGuard, epoch: int, model: LabModel, opt: torch.optim.Optimizer,
                 row: dict[str, float], dd: Dist, device: torch.device) -> bool:  # fmt: skip
    """Measure and judge the epoch just trained; roll back on a collapse. True: stop training."""
    acc = mean_over_ranks(guard.measure(model), dd, device)  # every rank decides the same
    row["guard_pgd_acc"] = acc
    event = guard.judge(epoch, acc, lambda: snapshot(model, opt))
    if event is None:
        return False
    if event.restored_epoch == epoch:  # nothing healthy to go back to: stop with these weights
        if dd.main:
            log.warning("%s", event.message(guard.what))
        return True
    assert guard.best is not None
    best = {k: v.clone() for k, v in guard.best[0].items()}  # the optimizer adopts these tensors; keep ours
    restore_state(best, guard.best[1], model, opt, f"the guard's snapshot of epoch {guard.best_epoch}", rng=False)
    row["restored_epoch"] = event.restored_epoch
    if dd.main:
        log.warning("%s", event.message(guard.what))
    return event.action == "stop"


def _loss(cfg: RunConfig, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy in fp32 with the recipe's label smoothing (the warm-up step's loss)."""
    return F.cross_entropy(logits.float(), y, label_smoothing=cfg.train.label_smoothing)


def _warm_up(step_fn: nn.Module, data: DeviceData, batch: int, device: torch.device,
             dtype: torch.dtype | None, cfg: RunConfig) -> None:  # fmt: skip
    """Run forward+backward once (no optimizer step) so compilation is not timed as training."""
    x, y = next(data.batches(batch))
    t = time.perf_counter()
    with autocast(device, dtype):
        loss = _loss(cfg, step_fn(x), y)
    loss.backward()
    for p in step_fn.parameters():
        p.grad = None
    log.info("torch.compile warm-up took %.1fs", time.perf_counter() - t)


def _train_epoch(cfg: RunConfig, step_fn: nn.Module, opt: torch.optim.Optimizer, data: DeviceData,
                 epoch: int, steps_per_epoch: int, total_steps: int, batch: int, dd: Dist,
                 device: torch.device, dtype: torch.dtype | None, progress: bool,
                 defense: Defense | DenoiserTraining, ema: AveragedModel | None = None) -> dict[str, float]:  # fmt: skip
    """One epoch over this rank's share of a seeded permutation; the epoch's history row
    (loss, train accuracy, last learning rate, seconds, images/s), summed over every rank."""
    step_fn.train()
    order = data.permutation(cfg.seed, epoch)
    if dd.world > 1:
        order = order[dd.rank :: dd.world]
    gen = torch.Generator().manual_seed(cfg.seed * 7919 + epoch)
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.int64)
    seen = 0
    channels_last = cfg.runtime.channels_last
    bar = progress_bar(total=steps_per_epoch, desc=f"epoch {epoch + 1}/{cfg.train.epochs}", unit="batch",
                       enabled=progress and dd.main, lines="none", mininterval=0.5)  # the epoch's line is logged below
    t0 = time.perf_counter()
    step = epoch * steps_per_epoch
    batches = data.batches(batch, order=order, augment=cfg.data.augment, padding=cfg.data.crop_padding, generator=gen)
    for i, (x, y) in enumerate(batches):
        lr = lr_at(step, total_steps, cfg.train.lr, cfg.train.schedule, cfg.train.warmup_frac)
        for g in opt.param_groups:
            g["lr"] = lr
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        defense.set_progress(step / steps_per_epoch)  # the epsilon warm-up (a float, no sync)
        loss, logits = defense.loss(step_fn, x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.train.grad_clip > 0:
            nn.utils.clip_grad_norm_(step_fn.parameters(), cfg.train.grad_clip)
        opt.step()
        if ema is not None:
            ema.update_parameters(plain_module(step_fn))  # the weights under any DDP / compile wrapper
        n = y.shape[0]
        seen += n
        loss_sum += loss.detach() * n
        correct += (logits.detach().argmax(1) == y).sum()
        step += 1
        bar.update(1)
        if i % 25 == 0 or i + 1 == steps_per_epoch:  # the only host syncs in the loop
            dt = time.perf_counter() - t0
            bar.set_postfix(loss=f"{loss_sum.item() / seen:.4f}", acc=f"{correct.item() / seen:.3f}",
                            img_s=f"{seen * dd.world / max(dt, 1e-9):.0f}", refresh=False)  # fmt: skip
    bar.close()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    dt = time.perf_counter() - t0
    stats = torch.stack([loss_sum, correct.to(loss_sum.dtype), torch.tensor(float(seen), device=device)])
    stats = sum_over_ranks(stats, dd)
    total = max(float(stats[2]), 1.0)
    return {
        "epoch": epoch + 1,
        "loss": float(stats[0]) / total,
        "train_acc": float(stats[1]) / total,
        "lr": lr_at(step - 1, total_steps, cfg.train.lr, cfg.train.schedule, cfg.train.warmup_frac),
        "seconds": round(dt, 3),
        "images_per_s": round(total / max(dt, 1e-9), 1),
    }
