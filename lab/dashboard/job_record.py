"""A dashboard training job's record (``<runs>/.dashboard_jobs/<id>.json``) and its live status.

Read and written by the page (:mod:`lab.dashboard.jobs`) and by the detached runner
(:mod:`lab.dashboard.job_runner`); standard library and :mod:`lab.core` only, so the runner,
which only waits for ``lab train``, starts without loading torch.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lab.core.errors import LabError
from lab.core.io import atomic_write_json

JOBS_DIR = ".dashboard_jobs"


@dataclass
class Job:
    """A background training run as its record holds it, plus its live status."""

    id: str
    recipe: str
    out: str
    log: str
    cmd: list[str]
    started: str
    then: list[list[str]] = field(default_factory=list)  # run after cmd succeeds (e.g. lab eval), same log
    stage: str = "train"  # what the job does now: train | evaluate (set by the runner)
    nice: int = 0  # niceness the runner adds to itself and its commands (the demo's jobs yield to the dashboard)
    epochs_total: int | None = None
    pid: int | None = None  # the runner (leader of its own process group), recorded by the runner
    child_pid: int | None = None  # lab train
    returncode: int | None = None
    finished: str | None = None
    stop_requested: bool = False
    record: str = ""  # path of the JSON record
    status: str = field(default="starting")  # starting | running | complete | failed | stopped | lost


def jobs_dir(runs_root: str | os.PathLike[str]) -> Path:
    return Path(runs_root) / JOBS_DIR


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def alive(pid: int | None, must_contain: str) -> bool:
    """Whether ``pid`` runs and its command line contains ``must_contain`` (so a reused pid is
    not mistaken for our process). Without /proc: whether the pid exists."""
    if not pid:
        return False
    if Path("/proc").is_dir():
        cmd = _cmdline(pid)
        if not cmd:
            return False
        try:  # a finished child that nobody reaped yet is not running
            if Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z"):
                return False
        except (OSError, IndexError):
            pass
        return must_contain in cmd
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


#: a job whose runner has not recorded its pid this long after the start is considered lost
START_GRACE_S = 120.0


def _age_s(job: Job) -> float:
    try:
        return (_dt.datetime.now(_dt.timezone.utc) - _dt.datetime.fromisoformat(job.started)).total_seconds()
    except ValueError:
        return float("inf")


def _status(job: Job) -> str:
    if job.returncode is not None:
        if job.returncode == 0:
            return "complete"
        return "stopped" if job.stop_requested else "failed"
    if job.pid is None:  # the runner has not started the trainer yet
        return "starting" if _age_s(job) < START_GRACE_S else "lost"
    if alive(job.pid, job.id):
        return "running"
    return "lost"  # the runner died without recording an exit code (machine rebooted, killed)


def load_job(path: str | os.PathLike[str]) -> Job:
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
        job = Job(**{k: v for k, v in data.items() if k in Job.__dataclass_fields__ and k not in ("status", "record")})
    except (OSError, json.JSONDecodeError, TypeError) as exc:
        raise LabError(f"job record {str(p)!r} is unreadable ({exc})") from None
    job.record = str(p)
    job.status = _status(job)
    return job


def save_job(job: Job) -> None:
    data = {k: v for k, v in asdict(job).items() if k not in ("status", "record")}
    atomic_write_json(job.record, data)
