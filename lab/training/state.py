"""The resumable state of a run: what ``train_state.safetensors`` holds and how it comes back.

After every finished epoch :meth:`RunWriter.commit` writes, atomically and in this order,
``train_state.safetensors`` (weights, optimizer state, RNG, history, the guard's state)
and ``model.safetensors`` with its JSON sidecar (see :mod:`lab.training.checkpoint`).
``resume=True`` reads the first back (:func:`open_run`, :func:`load_resumed`); only
:data:`RESUMABLE_CHANGES` and ``runtime.*`` may differ from the saved recipe.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import platform
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

import lab
from defenses import CollapseGuard, Defense
from defenses.denoisers import Denoised
from defenses.denoisers.training import DenoiserTraining
from defenses.detectors.saved import GuardedModel
from lab.core.errors import CheckpointError, ConfigError, LabError
from lab.data import Dataset
from lab.models import LabModel
from lab.training import checkpoint as ckpt
from lab.training.config import RunConfig, flatten, from_dict

# Keys a resumed run may change; anything else would make it a different experiment.
RESUMABLE_CHANGES = ("train.epochs", "train.eval_batch_size")


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
    """The versions a run records: the lab, torch, numpy, python."""
    return {
        "lab": lab.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def state_tensors(model: nn.Module, opt: torch.optim.Optimizer, *,
                  rng: bool = True) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:  # fmt: skip
    """``(tensors, record fields)``: weights ``model.*``, optimizer tensors ``optim.<param>.<name>``
    (its scalars and param groups in the record) and, with ``rng``, the CPU/CUDA RNG states."""
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


def restore_state(tensors: dict[str, torch.Tensor], record: dict[str, Any], model: nn.Module,
                  opt: torch.optim.Optimizer, where: str, *, rng: bool = True) -> None:  # fmt: skip
    """Put what :func:`state_tensors` saved back into ``model`` and ``opt`` (and the RNG);
    CheckpointError naming ``where`` when it does not fit."""
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
    tensors, meta = state_tensors(model, opt, rng=False)
    return {k: v.detach().clone() for k, v in tensors.items()}, meta


def resume_config(out: Path, cfg: RunConfig | None, overrides: tuple[str, ...]) -> tuple[RunConfig, Path]:
    """The recipe to continue ``out`` with (the saved one plus ``overrides``, or ``cfg`` when it
    describes the same run) and the state file; ConfigError for a change that is not resumable."""
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


def open_run(out: Path, cfg: RunConfig | None, resume: bool, overrides: tuple[str, ...]) -> tuple[RunConfig, Path | None]:
    """``(recipe, state file to resume from or None)`` for a run in ``out``. A new run needs a
    recipe and an empty folder (nothing is overwritten); a resumed one drops stale temp files."""
    if resume:
        cfg, state_path = resume_config(out, cfg, overrides)
        for stale in out.glob(".*.tmp"):  # left by a kill during an atomic write
            stale.unlink(missing_ok=True)
        return cfg, state_path
    if cfg is None:
        raise ConfigError("a recipe is needed to start a run (give --config)")
    if (out / ckpt.STATE_FILE).exists() or (out / ckpt.MODEL_FILE).exists():
        raise LabError(
            f"{str(out)!r} already holds a run; pass --resume to continue it or choose another --out "
            "(nothing was overwritten)"
        )
    return cfg, None


@dataclass
class Resumed:
    """Where a run stands: its epoch history, epochs completed, training seconds so far."""

    history: list[dict[str, float]] = field(default_factory=list)
    start_epoch: int = 0
    wall_before: float = 0.0


def make_ema(model: nn.Module, decay: float) -> AveragedModel | None:
    """The exponential moving average of ``model``'s weights and buffers (Polyak averaging as
    in Gowal et al. 2020), updated after every optimizer step; None when ``decay`` is 0."""
    if decay <= 0:
        return None
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def load_resumed(state_path: Path, ds: Dataset, model: nn.Module, opt: torch.optim.Optimizer,
                 guard: CollapseGuard | None, device: torch.device,
                 ema: AveragedModel | None = None) -> Resumed:  # fmt: skip
    """Restore ``model``, ``opt``, the RNG, ``guard`` and ``ema`` from ``state_path``;
    CheckpointError when the run was trained on other data than ``ds``."""
    tensors, record = ckpt.load_tensors(state_path)
    if record.get("model", {}).get("dataset_fingerprint") not in ("", ds.fingerprint):
        raise CheckpointError(f"{str(state_path)!r} was trained on other data than {ds.name!r} as found now")
    restore_state(tensors, record, model, opt, repr(str(state_path)))
    if ema is not None:
        saved = {k[len("ema."):]: v for k, v in tensors.items() if k.startswith("ema.")}
        if not saved:
            raise CheckpointError(f"{str(state_path)!r} holds no weight average (train.ema_decay) to continue")
        ckpt.load_state_into(ema, saved, repr(str(state_path)))
    resumed = Resumed(list(record.get("history", [])), int(record["epochs_completed"]),
                      float(record.get("wall_time_s", 0.0)))  # fmt: skip
    if guard is not None:
        guard.load_state(tensors, record.get("guard") or {}, device)
    return resumed


def defense_record(defense: Defense | DenoiserTraining, guard: CollapseGuard | None,
                   model: nn.Module) -> dict[str, Any] | None:  # fmt: skip
    """The checkpoint's ``defense`` field: None for standard training."""
    if isinstance(model, GuardedModel):
        det = model.record
        return {"name": det["name"], "kind": "detector", "title": det["title"], "settings": det["settings"],
                "threshold": det["threshold"], "fpr": det["fpr"], "classifier": model.info.extra["classifier"]}  # fmt: skip
    if isinstance(model, Denoised):
        den = model.info.extra["denoiser"]
        return {"name": den["name"], "kind": "denoiser", "title": den["title"], "settings": den["settings"],
                "classifier": model.info.extra["classifier"]}  # fmt: skip
    if not isinstance(defense, Defense) or not (defense.adversarial or defense.settings()):
        return None  # standard training
    rec: dict[str, Any] = {"name": defense.name, "kind": "training", "settings": defense.settings()}
    if guard is not None:
        rec["guard"] = guard.summary()
        rec["guard_events"] = [e.to_dict() for e in guard.events]
    return rec


@dataclass
class RunWriter:
    """Commits finished epochs of one run to ``out`` (rank 0 only; other ranks write nothing)."""

    out: Path
    cfg: RunConfig
    ds: Dataset
    model: LabModel
    opt: torch.optim.Optimizer
    defense: Defense | DenoiserTraining
    guard: CollapseGuard | None
    device: torch.device
    dtype: torch.dtype | None
    world: int = 1
    main: bool = True
    #: the weight average (train.ema_decay): saved in the train state, and it is the run's model
    ema: AveragedModel | None = None
    base: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        self.base = {
            "config": self.cfg.to_dict(),
            "seed": self.cfg.seed,
            "dataset": {"name": self.ds.name, "fingerprint": self.ds.fingerprint, "source": self.ds.source},
            "versions": versions(),
            "git_commit": git_commit(),
        }

    def commit(self, epoch_done: int, wall: float, status: str, metrics: dict[str, float],
               history: list[dict[str, float]]) -> None:  # fmt: skip
        """Atomically write train_state then model (+ sidecar) for a finished epoch."""
        if not self.main:
            return
        training = {
            "epochs_completed": epoch_done,
            "wall_time_s": round(wall, 3),
            "device": str(self.device),
            "precision": str(self.dtype).replace("torch.", "") if self.dtype else "fp32",
            "world_size": self.world,
            "history": history,
        }
        tensors, opt_meta = state_tensors(self.model, self.opt)
        if self.ema is not None:
            tensors.update({f"ema.{k}": v for k, v in self.ema.state_dict().items()})
            training["weights"] = f"exponential moving average, decay {self.cfg.train.ema_decay:g}"
        extra: dict[str, Any] = {"defense": defense_record(self.defense, self.guard, self.model)}
        if self.guard is not None:
            guard_tensors, extra["guard"] = self.guard.state()
            tensors.update(guard_tensors)
        record = ckpt.model_record(self.model, **self.base, **opt_meta, **extra, history=history,
                                   epochs_completed=epoch_done, wall_time_s=wall)  # fmt: skip
        ckpt.save_tensors(self.out / ckpt.STATE_FILE, tensors, record)
        created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        saved: LabModel = self.ema.module if self.ema is not None else self.model  # type: ignore[assignment]
        ckpt.save_model(self.out, saved, **self.base, defense=extra["defense"], status=status, metrics=metrics,
                        training=training, created=created)  # fmt: skip
