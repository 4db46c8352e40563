"""Start and stop ``streamlit run app.py`` (as ``python -m lab.dashboard.server``, which loads
the Playground's imports while the server starts) as a child process on a free localhost port.

Shared by the browser test (``tests/dashboard/test_dashboard_browser.py``) and the
cold-start benchmark (``benchmarks/dashboard_latency.py``) and ``make demo``
(:mod:`lab.dashboard.demo`); users start the dashboard alone with ``make dashboard``. Plain
functions, no Streamlit import.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app.py"
CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "/usr/bin/chromium", "/usr/lib/chromium/chromium")


def find_chromium() -> str | None:
    """The path of a chromium binary (Debian's ``chromium``), or None."""
    for name in CHROMIUM_CANDIDATES:
        path = shutil.which(name) or (name if Path(name).is_file() else None)
        if path:
            return path
    return None


def free_port(prefer: int = 0) -> int:
    """``prefer`` when it is free on localhost, else a free port the system picks."""
    for port in (prefer, 0) if prefer else (0,):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise OSError("no free port on localhost")


def start(
    runs_dir: str | os.PathLike[str],
    env: dict[str, str] | None = None,
    log: IO[bytes] | None = None,
    port: int = 0,
) -> tuple[subprocess.Popen[bytes], str]:
    """``streamlit run app.py`` on ``runs_dir``, through :mod:`lab.dashboard.server` (headless,
    localhost, a free port): (process, URL).

    ``env``: the child's environment (default: this one's); ``log``: where its output goes
    (default: discarded); ``port``: the port to use when it is free (default: any free one).
    """
    port = free_port(port)
    child_env = dict(os.environ if env is None else env, LAB_RUNS_DIR=str(runs_dir))
    cmd = [sys.executable, "-m", "lab.dashboard.server", "--server.port", str(port), "--server.headless",
           "true", "--server.address", "localhost", "--browser.gatherUsageStats", "false"]  # fmt: skip
    out = subprocess.DEVNULL if log is None else log
    proc = subprocess.Popen(cmd, cwd=ROOT, env=child_env, stdout=out, stderr=subprocess.STDOUT)
    return proc, f"http://localhost:{port}"


def wait_healthy(proc: subprocess.Popen[bytes], url: str, timeout: float, poll: float = 0.05) -> bool:
    """Poll the server's health check until it answers ``ok`` (True), or until the process
    exits or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as r:
                if r.read().strip() == b"ok":
                    return True
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            return False
        time.sleep(poll)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate the server, killing it if it has not exited after 15 s."""
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
