"""``make demo``'s driver (``python -m lab.dashboard.demo``) through its real entry point, on
the real recipes made tiny with ``--set``: the first model trained in the foreground, the
others trained and evaluated one after another as dashboard jobs (the Models page's records),
each one's line when it is ready; run again, it starts nothing and says so; an interrupted
training resumes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from dash_helpers import ROOT, threads_env

from lab.dashboard import jobs
from lab.dashboard.demo import MODELS, REPORT

TINY = ["--n", "16", "--eps", "0,0.3", "--no-checks", "--set", "data.train_subset=256", "--set",
        "data.test_subset=64", "--set", "train.epochs=1", "--set", "runtime.device=cpu", "--set",
        "runtime.precision=fp32"]  # fmt: skip


def demo(runs: Path, *extra: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "lab.dashboard.demo", "--no-serve", "--runs", str(runs), *TINY, *extra]
    return subprocess.run(cmd, cwd=ROOT, env=threads_env(), capture_output=True, text=True, timeout=timeout)  # fmt: skip


Ran = tuple[Path, subprocess.CompletedProcess[str]]


def lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("[demo ")]


@pytest.fixture(scope="module")
def demo_runs(tmp_path_factory: pytest.TempPathFactory) -> Ran:
    runs = tmp_path_factory.mktemp("demo") / "runs"
    return runs, demo(runs)


def test_the_demo_trains_and_evaluates_its_four_models_as_dashboard_jobs(demo_runs: Ran) -> None:
    runs, res = demo_runs
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    said = lines(res.stdout)
    assert said[0].endswith("training the standard SmallCNN, the dashboard's first model"), said
    assert said[-1].split("] ", 1)[1].startswith(f"{len(MODELS)} of {len(MODELS)} models trained and evaluated,")
    for m in MODELS:
        out = runs / m.run
        record = json.loads((out / "model.json").read_text())
        assert record["status"] == "complete" and record["config"]["train"]["epochs"] == 1
        report = json.loads((out / REPORT).read_text())
        assert (report["n"], report["suite"], report["eps"]) == (16, "quick", [0.0, 0.3])
        assert any(line.split("] ", 1)[1].startswith(f"{m.what} ready in {out}: test accuracy") for line in said), said
    dae = json.loads((runs / "demo_dae" / "model.json").read_text())
    assert dae["config"]["denoiser"]["classifier"] == str(runs / "demo_smallcnn")  # this demo's own SmallCNN
    # the background work is the Models page's jobs: the SmallCNN's evaluation, then a training
    # followed by its evaluation for each of the others, one at a time, all complete
    found = sorted(jobs.list_jobs(runs), key=lambda j: j.started)
    assert [Path(j.out).name for j in found] == [m.run for m in MODELS]
    assert all(j.status == "complete" and j.stage == "evaluate" for j in found)
    assert found[0].cmd[3] == "eval" and not found[0].then
    assert all(j.cmd[3] == "train" and j.then[0][3] == "eval" for j in found[1:])
    for a, b in zip(found, found[1:]):
        assert a.finished is not None and a.finished <= b.started


def test_the_demo_again_keeps_what_is_done_and_resumes_an_interrupted_training(demo_runs: Ran) -> None:
    runs, _ = demo_runs
    before = {j.id for j in jobs.list_jobs(runs)}
    again = demo(runs, timeout=300)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert {j.id for j in jobs.list_jobs(runs)} == before  # nothing started
    assert not any("training" in line for line in lines(again.stdout))
    # a training stopped after its first of two epochs (what Ctrl-C leaves) continues from there
    run = runs / "demo_fastnet_pgd_at"
    record = json.loads((run / "model.json").read_text())
    record["status"] = "running"
    (run / "model.json").write_text(json.dumps(record))
    (run / REPORT).unlink()
    resumed = demo(runs, "--set", "train.epochs=2", timeout=600)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    (job,) = [j for j in jobs.list_jobs(runs) if j.id not in before]
    assert Path(job.out) == run and "--resume" in job.cmd
    record = json.loads((run / "model.json").read_text())
    assert record["status"] == "complete" and record["training"]["epochs_completed"] == 2
    assert (run / REPORT).is_file()
