"""The engines and the crash: Ray and worker processes give the local engine's table, and
`kill -9` of `lab sweep run` at any moment loses no finished cell (slow: real subprocesses)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest
from sweep_helpers import tiny_sweep

from lab.experiments.engines import InProcess, RayEngine, Workers
from lab.experiments.spec import load_spec
from lab.experiments.sweep import run_sweep, sweep_status
from lab.experiments.tables import sweep_table
from tests.cli_helpers import LAB, ROOT

pytestmark = pytest.mark.slow

METRICS = (("robust_accuracy", "eps"), ("clean_accuracy", "seed"), ("test_acc", "seed"))


def tables(folder: Path) -> dict[str, dict]:
    return {m: sweep_table(folder, m, rows="model", cols=cols).to_dict() for m, cols in METRICS}


def test_ray_and_worker_processes_give_the_local_engines_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                                ) -> None:  # fmt: skip
    pytest.importorskip("ray")
    # Spawned workers re-run the parent's __main__ file; Streamlit's AppTest (earlier in the
    # suite) leaves its own script there. A plain __main__, as under `lab` or a notebook:
    monkeypatch.setitem(sys.modules, "__main__", types.ModuleType("__main__"))
    spec = load_spec(tiny_sweep(tmp_path, seeds=(0, 1)))
    local = run_sweep(spec, tmp_path / "local", engine=InProcess(progress=False, threads=1), progress=False)
    workers = run_sweep(spec, tmp_path / "workers", engine=Workers(2, threads=1), progress=False)
    ray = run_sweep(spec, tmp_path / "ray", engine=RayEngine(num_cpus=2, cpus_per_cell=1), progress=False)
    for res in (local, workers, ray):
        assert not res.failed and len(res.ran) == 8
    assert tables(tmp_path / "workers") == tables(tmp_path / "local")
    assert tables(tmp_path / "ray") == tables(tmp_path / "local")
    # the Ray driver wrote each cell's files from the bytes the task returned
    for row in sweep_status(tmp_path / "ray").cells:
        assert (tmp_path / "ray" / "cells" / row.key).is_dir()


def _counts(db: Path) -> dict[str, int]:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            rows = con.execute("SELECT status, count(*) FROM cells GROUP BY status").fetchall()
        finally:
            con.close()
    except sqlite3.Error:
        return {}
    return dict(rows)


def test_kill_9_at_any_moment_loses_nothing_and_resuming_gives_the_same_table(tmp_path: Path) -> None:
    spec = tiny_sweep(tmp_path, seeds=(0, 1))
    env = dict(os.environ, OMP_NUM_THREADS="1")

    def lab_sweep(out: Path) -> subprocess.Popen[str]:
        assert LAB
        return subprocess.Popen([LAB, "sweep", "run", str(spec), "--out", str(out), "--no-progress"], cwd=ROOT,
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)  # fmt: skip

    ref = lab_sweep(tmp_path / "ref")
    assert ref.wait(timeout=600) == 0
    out = tmp_path / "killed"
    db = out / "store.sqlite"
    kills = 0
    for done_before_kill in (1, 3, 5):  # kill while a training, then evaluations, are running
        proc = lab_sweep(out)
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None:
            c = _counts(db)
            if c.get("done", 0) >= done_before_kill and c.get("running", 0) >= 1:
                time.sleep(0.3)  # somewhere inside the running cell
                os.kill(proc.pid, signal.SIGKILL)
                kills += 1
                break
            time.sleep(0.05)
        proc.wait(timeout=60)
        st = sweep_status(out)  # readable after every kill
        for row in st.cells:
            if row.status == "done":
                assert (out / "cells" / row.key).is_dir(), f"{row.label}: done without its files"
    assert kills >= 2, "the sweep finished before it could be killed"
    final = lab_sweep(out)
    assert final.wait(timeout=600) == 0
    assert sweep_status(out).counts["done"] == 8
    assert tables(out) == tables(tmp_path / "ref")
