"""Training: a seeded, resumable loop with the speed path done once, here.

``train(cfg, out_dir)`` trains ``cfg.model.arch`` on ``cfg.data.dataset`` and writes a
run folder (see :mod:`lab.checkpoint`). What makes it fast:

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
optimizer, RNG, history) and ``model.safetensors``; ``resume=True`` continues from there.
Under ``torchrun`` it runs DistributedDataParallel (NCCL on GPUs, gloo on CPU); rank 0
writes the files.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import logging
import math
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

import lab
from defenses import CollapseGuard, Defense, build_defense, build_guard
from defenses.denoisers import Denoised, load_classifier, wrap
from defenses.denoisers.training import DenoiserTraining
from lab import checkpoint as ckpt
from lab.config import RunConfig, flatten, from_dict
from lab.data import Dataset, load_dataset
from lab.data.device import DeviceData
from lab.errors import CheckpointError, ConfigError, LabError
from lab.metrics import accuracy
from lab.models import LabModel, ModelInfo, build_model
from lab.runtime import autocast, pick_device, pick_dtype, seed_everything, set_threads
from lab.schedule import lr_at

log = logging.getLogger(__name__)

# Keys a resumed run may change; anything else would make it a different experiment.
RESUMABLE_CHANGES = ("train.epochs", "train.eval_batch_size")


@dataclass
class TrainResult:
    out_dir: Path
    model: LabModel
    metrics: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)
    wall_time_s: float = 0.0


@dataclass
class _Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def _dist_from_env() -> _Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist()
    return _Dist(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))


def git_commit() -> str:
    """The lab's source commit (``unknown`` outside a git checkout)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(lab.__file__).resolve().parent,
            capture_output=True, text=True, timeout=5, check=False,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def versions() -> dict[str, str]:
    return {
        "lab": lab.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def make_optimizer(cfg: RunConfig, model: nn.Module) -> torch.optim.Optimizer:
    t = cfg.train
    # No weight decay on biases and normalization parameters (standard practice).
    # Frozen parameters (a denoiser's classifier) are not optimized.
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": t.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if t.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=t.lr, momentum=t.momentum, nesterov=t.nesterov and t.momentum > 0)
    if t.optimizer == "adam":
        return torch.optim.Adam(groups, lr=t.lr)
    return torch.optim.AdamW(groups, lr=t.lr)


# ---------------------------------------------------------------- train state (resume)


def _state_tensors(model: nn.Module, opt: torch.optim.Optimizer, *,
                   rng: bool = True) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:  # fmt: skip
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    sd = opt.state_dict()
    scalars: dict[str, dict[str, Any]] = {}
    for pid, st in sd["state"].items():
        for name, val in st.items():
            if torch.is_tensor(val):
                tensors[f"optim.{pid}.{name}"] = val
            else:
                scalars.setdefault(str(pid), {})[name] = val
    if rng:
        tensors["rng.cpu"] = torch.get_rng_state()
        if torch.cuda.is_available():
            tensors["rng.cuda"] = torch.cuda.get_rng_state()
    return tensors, {"optim_groups": sd["param_groups"], "optim_scalars": scalars}


def _restore_state(tensors: dict[str, torch.Tensor], record: dict[str, Any], model: nn.Module,
                   opt: torch.optim.Optimizer, where: str, *, rng: bool = True) -> None:  # fmt: skip
    weights = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    ckpt.load_state_into(model, weights, where)
    state: dict[int, dict[str, Any]] = {}
    for k, v in tensors.items():
        if k.startswith("optim."):
            _, pid, name = k.split(".", 2)
            state.setdefault(int(pid), {})[name] = v
    for pid, d in record.get("optim_scalars", {}).items():
        state.setdefault(int(pid), {}).update(d)
    try:
        opt.load_state_dict({"state": state, "param_groups": record["optim_groups"]})
    except (KeyError, ValueError) as exc:
        raise CheckpointError(f"{where} has an optimizer state that does not fit this recipe ({exc})") from None
    if not rng:
        return
    torch.set_rng_state(tensors["rng.cpu"])
    if "rng.cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng.cuda"])


def snapshot(model: nn.Module, opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """A copy of the weights and optimizer state (no RNG) the guard can roll back to."""
    tensors, meta = _state_tensors(model, opt, rng=False)
    return {k: v.detach().clone() for k, v in tensors.items()}, meta


def _resume_config(out: Path, cfg: RunConfig | None, overrides: tuple[str, ...]) -> tuple[RunConfig, Path]:
    state_path = out / ckpt.STATE_FILE
    if not state_path.exists():
        raise CheckpointError(
            f"nothing to resume in {str(out)!r}: it holds no {ckpt.STATE_FILE} (start it without --resume)"
        )
    _, record = ckpt.load_tensors(state_path)
    saved = from_dict(record["config"])
    wanted = from_dict(record["config"], overrides)
    if cfg is not None:  # a --config given with --resume must describe the same run
        wanted = from_dict(dataclasses.asdict(cfg))
    before, after = flatten(saved.to_dict()), flatten(wanted.to_dict())
    changed = [k for k in before if before[k] != after[k] and not k.startswith("runtime.")]
    bad = [k for k in changed if k not in RESUMABLE_CHANGES]
    if bad:
        raise ConfigError(
            f"--resume continues the recipe saved in {str(out)!r}; it cannot change {', '.join(bad)} "
            f"(only {', '.join(RESUMABLE_CHANGES)} and runtime.* may change)"
        )
    return wanted, state_path


# ---------------------------------------------------------------- the loop


def _subset(x: np.ndarray, y: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    return (x[:n], y[:n]) if n else (x, y)


def _model_info(cfg: RunConfig, ds: Dataset) -> ModelInfo:
    return ModelInfo(
        arch=cfg.model.arch,
        dataset=ds.name,
        input_shape=tuple(ds.input_shape),  # type: ignore[arg-type]
        class_names=tuple(ds.class_names),
        mean=tuple(ds.mean),
        std=tuple(ds.std),
        dataset_fingerprint=ds.fingerprint,
    )


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
    state_path: Path | None = None
    if resume:
        cfg, state_path = _resume_config(out, cfg, overrides)
        for stale in out.glob(".*.tmp"):  # left by a kill during an atomic write
            stale.unlink(missing_ok=True)
    elif cfg is None:
        raise ConfigError("a recipe is needed to start a run (give --config)")
    elif (out / ckpt.STATE_FILE).exists() or (out / ckpt.MODEL_FILE).exists():
        raise LabError(
            f"{str(out)!r} already holds a run; pass --resume to continue it or choose another --out "
            "(nothing was overwritten)"
        )
    assert cfg is not None

    dd = _dist_from_env()
    set_threads(cfg.runtime.threads)
    if dd.world > 1:
        dev_name = cfg.runtime.device
        if dev_name == "auto":
            dev_name = "cuda" if torch.cuda.is_available() else "cpu"
        device = torch.device(f"cuda:{dd.local_rank}") if dev_name.startswith("cuda") else torch.device("cpu")
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    else:
        device = pick_device(cfg.runtime.device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    amp_dtype = pick_dtype(cfg.runtime.precision, device)
    seed_everything(cfg.seed)

    ds = load_dataset(cfg.data.dataset, cfg.data.data_dir or None)
    train_data = DeviceData(*_subset(ds.train_x, ds.train_y, cfg.data.train_subset), device)
    test_data = DeviceData(*_subset(ds.test_x, ds.test_y, cfg.data.test_subset), device)
    info = _model_info(cfg, ds)
    defense: Defense | DenoiserTraining
    guard: CollapseGuard | None = None
    if cfg.denoiser.name:  # a denoiser in front of a frozen, already trained classifier
        classifier, classifier_record = load_classifier(cfg.denoiser.classifier, info)
        model: LabModel = wrap(classifier, cfg.denoiser, classifier_record, copy=False)
        defense = DenoiserTraining(cfg.denoiser, dtype=amp_dtype)
    else:
        model = build_model(info)
        defense = build_defense(cfg.defense, input_shape=info.input_shape, dtype=amp_dtype,
                                label_smoothing=cfg.train.label_smoothing)  # fmt: skip
        guard = build_guard(defense, train_data, cfg.seed)
    model = model.to(device)
    if cfg.runtime.channels_last:
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    opt = make_optimizer(cfg, model)
    trainable = any(p.requires_grad for p in model.parameters())

    history: list[dict[str, float]] = []
    start_epoch = 0
    wall_before = 0.0
    if state_path is not None:
        tensors, record = ckpt.load_tensors(state_path)
        if record.get("model", {}).get("dataset_fingerprint") not in ("", ds.fingerprint):
            raise CheckpointError(f"{str(state_path)!r} was trained on other data than {ds.name!r} as found now")
        _restore_state(tensors, record, model, opt, repr(str(state_path)))
        history = list(record.get("history", []))
        start_epoch = int(record["epochs_completed"])
        wall_before = float(record.get("wall_time_s", 0.0))
        if guard is not None:
            guard.load_state(tensors, record.get("guard") or {}, device)
        if dd.main:
            log.info("resuming %s after epoch %d", out, start_epoch)

    net: nn.Module = model
    if dd.world > 1:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    step_fn = net
    if cfg.runtime.compile:
        step_fn = torch.compile(net)  # type: ignore[assignment]

    per_rank_batch = max(1, cfg.train.batch_size // dd.world)
    steps_per_epoch = math.ceil(len(train_data) / (per_rank_batch * dd.world))
    total_steps = steps_per_epoch * cfg.train.epochs
    base = {
        "config": cfg.to_dict(),
        "seed": cfg.seed,
        "dataset": {"name": ds.name, "fingerprint": ds.fingerprint, "source": ds.source},
        "versions": versions(),
        "git_commit": git_commit(),
    }

    def commit(epoch_done: int, wall: float, status: str, metrics: dict[str, float]) -> None:
        """Atomically write train_state then model (+ sidecar) for a finished epoch."""
        if not dd.main:
            return
        training = {
            "epochs_completed": epoch_done,
            "wall_time_s": round(wall, 3),
            "device": str(device),
            "precision": str(amp_dtype).replace("torch.", "") if amp_dtype else "fp32",
            "world_size": dd.world,
            "history": history,
        }
        tensors, opt_meta = _state_tensors(model, opt)
        extra: dict[str, Any] = {"defense": _defense_record(defense, guard, model)}
        if guard is not None:
            guard_tensors, extra["guard"] = guard.state()
            tensors.update(guard_tensors)
        record = ckpt.model_record(model, **base, **opt_meta, **extra, history=history, epochs_completed=epoch_done,
                                   wall_time_s=wall)  # fmt: skip
        ckpt.save_tensors(out / ckpt.STATE_FILE, tensors, record)
        created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        ckpt.save_model(out, model, **base, defense=extra["defense"], status=status, metrics=metrics,
                        training=training, created=created)  # fmt: skip

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
            log.info("%s has no parameters to train; saving the pipeline", cfg.denoiser.name)
            acc = accuracy(model, test_data, cfg.train.eval_batch_size) if dd.main else float("nan")
            commit(0, 0.0, "complete", {"test_acc": acc})
        stopped = True
    try:
        for epoch in range(start_epoch, cfg.train.epochs if not stopped else start_epoch):
            row = _train_epoch(cfg, step_fn, opt, train_data, epoch, steps_per_epoch, total_steps,
                               per_rank_batch, dd, device, amp_dtype, progress, defense)  # fmt: skip
            if dd.world > 1:
                dist.barrier()
            if guard is not None:
                stopped = _guard_check(guard, epoch + 1, model, opt, row, dd, device)
            row["test_acc"] = accuracy(model, test_data, cfg.train.eval_batch_size) if dd.main else float("nan")
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
            commit(epoch + 1, wall, "stopped_early" if stopped else "complete" if done else "running", metrics)
            if stopped:
                break
    except KeyboardInterrupt:
        if dd.main:
            log.warning("interrupted; finished epochs are saved in %s (continue with --resume)", out)
        raise
    finally:
        if dd.world > 1 and dist.is_initialized():
            dist.destroy_process_group()

    opt.zero_grad(set_to_none=True)  # hand back a model without stale gradients
    wall = wall_before + time.perf_counter() - t_run
    final_acc = accuracy(model, test_data, cfg.train.eval_batch_size)
    metrics = {"test_acc": final_acc}
    if history:
        metrics.update(train_loss=history[-1]["loss"], train_acc=history[-1]["train_acc"])
    return TrainResult(out_dir=out, model=model.eval(), metrics=metrics, history=history, wall_time_s=wall)


def _defense_record(defense: Defense | DenoiserTraining, guard: CollapseGuard | None,
                    model: nn.Module) -> dict[str, Any] | None:  # fmt: skip
    """The checkpoint's ``defense`` field: None for standard training."""
    if isinstance(model, Denoised):
        den = model.info.extra["denoiser"]
        return {"name": den["name"], "kind": "denoiser", "title": den["title"], "settings": den["settings"],
                "classifier": model.info.extra["classifier"]}  # fmt: skip
    if not isinstance(defense, Defense) or not defense.adversarial:
        return None
    rec: dict[str, Any] = {"name": defense.name, "kind": "training", "settings": defense.settings()}
    if guard is not None:
        rec["guard"] = guard.summary()
        rec["guard_events"] = [e.to_dict() for e in guard.events]
    return rec


def _guard_check(guard: CollapseGuard, epoch: int, model: LabModel, opt: torch.optim.Optimizer,
                 row: dict[str, float], dd: _Dist, device: torch.device) -> bool:  # fmt: skip
    """Measure and judge the epoch just trained; roll back on a collapse. True: stop training."""
    acc = guard.measure(model)
    if dd.world > 1:  # every rank decides the same
        t = torch.tensor(acc, device=device, dtype=torch.float64)
        dist.all_reduce(t)
        acc = float(t) / dd.world
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
    _restore_state(best, guard.best[1], model, opt, f"the guard's snapshot of epoch {guard.best_epoch}", rng=False)
    row["restored_epoch"] = event.restored_epoch
    if dd.main:
        log.warning("%s", event.message(guard.what))
    return event.action == "stop"


def _loss(cfg: RunConfig, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
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
                 epoch: int, steps_per_epoch: int, total_steps: int, batch: int, dd: _Dist,
                 device: torch.device, dtype: torch.dtype | None, progress: bool,
                 defense: Defense | DenoiserTraining) -> dict[str, float]:  # fmt: skip
    step_fn.train()
    order = data.permutation(cfg.seed, epoch)
    if dd.world > 1:
        order = order[dd.rank :: dd.world]
    gen = torch.Generator().manual_seed(cfg.seed * 7919 + epoch)
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.int64)
    seen = 0
    channels_last = cfg.runtime.channels_last
    bar = tqdm(total=steps_per_epoch, desc=f"epoch {epoch + 1}/{cfg.train.epochs}", unit="batch",
               disable=not (progress and dd.main), leave=False, mininterval=0.5, file=sys.stderr)  # fmt: skip
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
    if dd.world > 1:
        dist.all_reduce(stats)
    total = max(float(stats[2]), 1.0)
    return {
        "epoch": epoch + 1,
        "loss": float(stats[0]) / total,
        "train_acc": float(stats[1]) / total,
        "lr": lr_at(step - 1, total_steps, cfg.train.lr, cfg.train.schedule, cfg.train.warmup_frac),
        "seconds": round(dt, 3),
        "images_per_s": round(total / max(dt, 1e-9), 1),
    }
