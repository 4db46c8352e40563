"""Running the real ``lab`` console script from tests, and checking user-error output."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
LAB = str(BIN / "lab") if (BIN / "lab").exists() else shutil.which("lab")


def run_lab(*args: str, timeout: float = 120, threads: int | None = 1) -> subprocess.CompletedProcess[str]:
    """``lab ARGS`` in the repository root.

    ``threads=1`` (the default) gives the subprocess one OpenMP thread: the runs are tiny, and
    on a small shared machine two spinning threads per process make them 10-20x slower.
    ``threads=None`` keeps torch's default (for timing-sensitive training runs).
    """
    assert LAB, "the lab console script is not installed"
    env = dict(os.environ) if threads is None else dict(os.environ, OMP_NUM_THREADS=str(threads))
    return subprocess.run([LAB, *args], check=False, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env)


def assert_user_error(proc: subprocess.CompletedProcess[str], fragment: str) -> None:
    """Exit code 2, no traceback, exactly one ``error:`` line containing ``fragment``, printed last."""
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and fragment in errors[0], proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == errors[0]
