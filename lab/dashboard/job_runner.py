"""``python -m lab.dashboard.job_runner RECORD``: run one dashboard training job to its end.

Started detached by :func:`lab.dashboard.jobs.start_training` (or ``start_evaluation``). Runs the
command in the job record, then, if it succeeded, the record's ``then`` commands (``lab eval``
of the trained model), each with its output appended to the job's log; writes its own and the
current child's pid into the record as each starts (and the stage: train, then evaluate),
and the exit code and end time when the last ends. A SIGINT or SIGTERM to
the runner is passed on to the trainer (which saves nothing partial: every finished epoch
is already on disk) and the runner still records the outcome.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from types import FrameType

from lab.dashboard.job_record import load_job, now, save_job


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m lab.dashboard.job_runner JOB_RECORD.json", file=sys.stderr)
        return 2
    job = load_job(argv[0])
    if job.nice and hasattr(os, "nice"):
        os.nice(job.nice)  # inherited by the commands
    current: list[subprocess.Popen[bytes]] = []
    stopping: list[int] = []

    def forward(signum: int, frame: FrameType | None) -> None:
        stopping.append(signum)
        if current and current[-1].poll() is None:
            current[-1].send_signal(signal.SIGINT)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    # the Models page shows the log's last carriage-return segment: keep tqdm's live bar
    env = {**os.environ, "LAB_PROGRESS": os.environ.get("LAB_PROGRESS", "bar")}
    rc = 0
    with open(job.log, "ab") as log:
        for i, cmd in enumerate([job.cmd, *job.then]):
            log.write(f"$ {' '.join(cmd)}\n".encode())
            log.flush()
            child = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,  # noqa: S603
                                     env=env)  # fmt: skip
            current.append(child)
            fresh = load_job(job.record)
            fresh.pid = os.getpid()
            fresh.child_pid = child.pid
            if i:  # the commands after the training evaluate the model
                fresh.stage = "evaluate"
            save_job(fresh)
            rc = child.wait()
            log.write(f"\n[{_name(cmd)} ended with exit code {rc}]\n".encode())
            log.flush()
            if rc != 0 or stopping or load_job(job.record).stop_requested:
                break
    final = load_job(job.record)  # keeps a stop request the page wrote meanwhile
    final.returncode = rc
    final.finished = now()
    save_job(final)
    return 0


def _name(cmd: list[str]) -> str:
    """``lab train`` for ``python -m lab train ...``."""
    words = cmd[cmd.index("lab") : cmd.index("lab") + 2] if "lab" in cmd else cmd[:1]
    return " ".join(words)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
