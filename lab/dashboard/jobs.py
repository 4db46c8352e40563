"""``lab train`` in the background, started from the dashboard, outliving the page.

:func:`start_training` writes a job record (``<runs>/.dashboard_jobs/<id>.json``: the
recipe, the run folder, the log file, the command) and starts
``python -m lab.dashboard.job_runner RECORD`` in a new session, detached from the
Streamlit server: the runner starts ``lab train``, writes its own and the trainer's pid
into the record, waits, and records the exit code. A page reload, a new browser tab or a
restarted dashboard reads the same records (:func:`list_jobs`), so progress survives all
three. Progress (:func:`progress`) is read from what the trainer writes anyway: the run's
``model.json`` after every epoch (epochs done, history) and the last line of the log.

Only recipes inside the recipes folder and run folders inside the runs folder are
accepted; a run folder that already holds a run needs ``resume``.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.core.errors import LabError
from lab.dashboard.job_record import Job, alive, jobs_dir, load_job, now, save_job
from lab.present.reports import same_folder
from lab.training.checkpoint import MODEL_FILE, STATE_FILE
from lab.training.config import load_config

#: run folder names the form accepts (a folder directly under the runs folder)
RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def list_jobs(runs_root: str | os.PathLike[str]) -> list[Job]:
    """Every job started from the dashboard for this runs folder, newest first."""
    folder = jobs_dir(runs_root)
    if not folder.is_dir():
        return []
    jobs = []
    for p in folder.glob("*.json"):
        try:
            jobs.append(load_job(p))
        except LabError:
            continue
    return sorted(jobs, key=lambda j: j.started, reverse=True)


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def start_training(
    recipe: str | os.PathLike[str],
    run_name: str,
    runs_root: str | os.PathLike[str],
    recipes_root: str | os.PathLike[str],
    *,
    overrides: Sequence[str] = (),
    resume: bool = False,
    python: str | None = None,
    evaluate: Sequence[str] | None = None,
    nice: int = 0,
) -> Job:
    """Start ``lab train --config RECIPE --out RUNS/RUN_NAME [--set ...] [--resume]`` in the
    background, and after it, when ``evaluate`` is given, ``lab eval --model RUN EVALUATE...``
    (``nice``: a lower CPU priority for both, so that the dashboard stays responsive); LabError
    (nothing started) for a recipe outside ``recipes_root``, an invalid recipe or override, a
    bad run name, a folder that already holds a run without ``resume`` (or none with it), or a
    run of that folder that is still going."""
    root = Path(runs_root)
    rec = Path(recipe)
    if not rec.is_file() or not _inside(rec, Path(recipes_root)):
        raise LabError(f"recipe {str(rec)!r} is not a recipe file in {str(recipes_root)!r}")
    if not RUN_NAME.match(run_name or ""):
        raise LabError(
            f"run name {run_name!r} must be letters, digits, '_', '-' or '.', starting with a letter or digit"
        )
    cfg = load_config(rec, list(overrides))  # validates the recipe and the overrides now, not in the log
    out = root / run_name
    exists = (out / STATE_FILE).exists() or (out / MODEL_FILE).exists()
    if exists and not resume:
        raise LabError(f"{str(out)!r} already holds a run; tick 'resume' to continue it or choose another name")
    if resume and not (out / STATE_FILE).exists():
        raise LabError(f"{str(out)!r} holds no run to resume")
    _refuse_busy(root, out)
    py = python or sys.executable
    cmd = [py, "-m", "lab", "train", "--config", str(rec.resolve()), "--out", str(out.resolve())]
    for o in overrides:
        cmd += ["--set", o]
    if resume:
        cmd.append("--resume")
    then = [_eval_cmd(py, out, evaluate)] if evaluate is not None else []
    return _launch(root, run_name, rec, out, cmd, then, epochs_total=int(cfg.train.epochs), stage="train", python=py,
                   nice=nice)  # fmt: skip


def start_evaluation(run: str | os.PathLike[str], runs_root: str | os.PathLike[str], args: Sequence[str] = (), *,
                     recipe: str = "", python: str | None = None, nice: int = 0) -> Job:  # fmt: skip
    """Start ``lab eval --model RUN ARGS...`` in the background, as a job the Models page
    follows like a training; LabError (nothing started) for a run folder outside
    ``runs_root``, one without a model, or one a job is still working on."""
    root = Path(runs_root)
    out = Path(run)
    if not _inside(out, root) or not RUN_NAME.match(out.name):
        raise LabError(f"{str(out)!r} is not a run folder in {str(runs_root)!r}")
    if not (out / MODEL_FILE).exists():
        raise LabError(f"{str(out)!r} holds no model to evaluate")
    _refuse_busy(root, out)
    py = python or sys.executable
    return _launch(root, out.name, Path(recipe), out, _eval_cmd(py, out, args), [], epochs_total=None,
                   stage="evaluate", python=py, nice=nice)  # fmt: skip


def _eval_cmd(py: str, out: Path, args: Sequence[str]) -> list[str]:
    return [py, "-m", "lab", "eval", "--model", str(out.resolve()), *args]


def running_job(runs_root: str | os.PathLike[str], out: str | os.PathLike[str]) -> Job | None:
    """The job that is starting or running on the run folder ``out``, if any."""
    return next((j for j in list_jobs(runs_root) if j.status in ("starting", "running") and same_folder(j.out, out)),
                None)  # fmt: skip


def _refuse_busy(root: Path, out: Path) -> None:
    other = running_job(root, out)
    if other is not None:
        raise LabError(f"{str(out)!r} is already being trained or evaluated (job {other.id}); wait for it or stop it")


def _launch(root: Path, run_name: str, rec: Path, out: Path, cmd: list[str], then: list[list[str]], *,
            epochs_total: int | None, stage: str, python: str, nice: int = 0) -> Job:  # fmt: skip
    """Write the job's record and start its detached runner."""
    root.mkdir(parents=True, exist_ok=True)
    folder = jobs_dir(root)
    folder.mkdir(parents=True, exist_ok=True)
    job_id = f"{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}-{run_name}-{uuid.uuid4().hex[:6]}"
    log = folder / f"{job_id}.log"
    job = Job(id=job_id, recipe=str(rec), out=str(out), log=str(log), cmd=cmd, then=then, stage=stage,
              nice=nice, started=now(), epochs_total=epochs_total, record=str(folder / f"{job_id}.json"))  # fmt: skip
    save_job(job)
    runner = subprocess.Popen(  # noqa: S603 - our own interpreter and module, arguments as a list
        [python, "-m", "lab.dashboard.job_runner", job.record],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True, close_fds=True, cwd=os.getcwd(),
    )  # fmt: skip
    job.status = "starting"  # the runner records its pid and the trainer's (the record has one writer at a time)
    _reap_later(runner)
    return job


_RUNNERS: list[subprocess.Popen[bytes]] = []


def _reap_later(proc: subprocess.Popen[bytes]) -> None:
    """Keep the Popen so finished runners are reaped (no zombies) the next time one starts."""
    _RUNNERS[:] = [p for p in _RUNNERS if p.poll() is None]
    _RUNNERS.append(proc)


def stop_job(job: Job) -> bool:
    """Interrupt the job's ``lab train`` (SIGINT: finished epochs stay saved; ``--resume``
    continues). Returns False when it is not running."""
    if job.status != "running":
        return False
    job.stop_requested = True
    save_job(job)
    if job.child_pid and alive(job.child_pid, str(Path(job.out).resolve())):
        os.kill(job.child_pid, signal.SIGINT)
        return True
    if job.pid and alive(job.pid, job.id):
        os.killpg(job.pid, signal.SIGINT)  # the runner leads its own process group (start_new_session)
        return True
    return False


@dataclass
class Progress:
    epochs_done: int
    epochs_total: int | None
    history: list[dict[str, Any]]
    metrics: dict[str, Any]
    run_status: str | None  # the run's model.json status: running | complete | stopped_early
    last_line: str  # the last line of the log (tqdm's bar, a log message or an error)

    @property
    def fraction(self) -> float:
        if not self.epochs_total:
            return 0.0
        return max(0.0, min(1.0, self.epochs_done / self.epochs_total))


def _last_state(line: str) -> str:
    """A log line as the terminal last showed it: the final non-empty ``\\r`` segment, no colours."""
    parts = [s for s in line.split("\r") if s.strip()]
    return _ANSI.sub("", parts[-1]) if parts else ""


def log_tail(path: str | os.PathLike[str], max_bytes: int = 16_384) -> str:
    """The end of a log, with progress-bar redraws (``\\r``) reduced to their last state."""
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - max_bytes))
            raw = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    lines = [_last_state(line) for line in raw.split("\n")]
    return "\n".join(line.rstrip() for line in lines).strip("\n")


def progress(job: Job) -> Progress:
    """Epochs done (the run's ``model.json``), the history, and the log's last line."""
    history: list[dict[str, Any]] = []
    done = 0
    status = None
    metrics: dict[str, Any] = {}
    total = job.epochs_total
    side = Path(job.out) / "model.json"
    try:
        record = json.loads(side.read_text(encoding="utf-8"))
        training = record.get("training") or {}
        history = list(training.get("history") or [])
        done = int(training.get("epochs_completed") or 0)
        status = record.get("status")
        metrics = dict(record.get("metrics") or {})
        total = total or int(((record.get("config") or {}).get("train") or {}).get("epochs") or 0) or None
    except (OSError, json.JSONDecodeError, TypeError, ValueError):
        pass
    tail = log_tail(job.log)
    last = next((line for line in reversed(tail.splitlines()) if line.strip()), "")
    return Progress(epochs_done=done, epochs_total=total, history=history, metrics=metrics, run_status=status,
                    last_line=last)  # fmt: skip
