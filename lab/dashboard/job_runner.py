"""``python -m lab.dashboard.job_runner RECORD``: run one dashboard training job to its end.

Started detached by :func:`lab.dashboard.jobs.start_training`. Runs the command in the job
record with its output appended to the job's log, writes its own and the trainer's pid into
the record as soon as the trainer starts, and the exit code and end time when it ends. A SIGINT or SIGTERM to
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
    with open(job.log, "ab") as log:
        log.write(f"$ {' '.join(job.cmd)}\n".encode())
        log.flush()
        # the Models page shows the log's last carriage-return segment: keep tqdm's live bar
        env = {**os.environ, "LAB_PROGRESS": os.environ.get("LAB_PROGRESS", "bar")}
        child = subprocess.Popen(job.cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,  # noqa: S603
                                 env=env)  # fmt: skip

        def forward(signum: int, frame: FrameType | None) -> None:
            if child.poll() is None:
                child.send_signal(signal.SIGINT)

        signal.signal(signal.SIGINT, forward)
        signal.signal(signal.SIGTERM, forward)
        fresh = load_job(job.record)
        fresh.pid = os.getpid()
        fresh.child_pid = child.pid
        save_job(fresh)
        rc = child.wait()
        log.write(f"\n[lab train ended with exit code {rc}]\n".encode())
    final = load_job(job.record)  # keeps a stop request the page wrote meanwhile
    final.returncode = rc
    final.finished = now()
    save_job(final)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
