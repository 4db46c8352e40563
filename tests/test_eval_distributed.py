"""``torchrun --nproc_per_node 2 -m lab eval``: two gloo processes on the CPU split the images
and rank 0 writes one report equal, field by field, to the single-process one (timings,
``created`` and ``meta.ranks`` aside); a bad input still ends every rank with exit 2 and one
sentence. Plus the pieces that make it equal: per-image random starts and the shard plan."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from cli_helpers import ROOT, run_lab

from attacks.pgd import PGD
from lab.core.distributed import Dist
from lab.core.rng import image_seeds
from lab.evaluation.shards import rank_batches

#: the quick suite (FGSM, and PGD-20 from a random start) plus PGD with restarts, so each
#: restart's random stream is exercised; batches of 24 so that the single process and the
#: ranks cut the 64 images differently; the checks run Square, which is split by batch
ARGS = ["--suite", "quick", "--eps", "0,0.05,0.1,0.2", "-n", "64", "--probe-n", "32", "--batch-size", "24",
        "--no-progress"]  # fmt: skip
#: fields that may differ between runs: timings, the creation time, how many ranks ran it
VOLATILE = {("seconds",), ("meta", "created"), ("meta", "ranks")}


def torchrun_lab(*args: str, ranks: int = 2) -> subprocess.CompletedProcess[str]:
    """``python -m torch.distributed.run --standalone --nproc_per_node RANKS -m lab ARGS``, one
    OpenMP thread per rank (as :func:`run_lab` gives the single process)."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}", "-m", "lab",
           *args]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=180, cwd=ROOT, env=env)


def comparable(obj: Any, path: tuple[str, ...] = ()) -> Any:
    """The report's JSON without its :data:`VOLATILE` fields (``seconds`` at any depth)."""
    if isinstance(obj, dict):
        return {k: comparable(v, (*path, k)) for k, v in obj.items()
                if (k,) not in VOLATILE and (*path, k) not in VOLATILE}  # fmt: skip
    if isinstance(obj, list):
        return [comparable(v, path) for v in obj]
    return obj


def differences(a: Any, b: Any, where: str = "") -> list[str]:
    """Every field path where ``a`` and ``b`` differ, with both values."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in differences(a.get(k), b.get(k), f"{where}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (u, v) in enumerate(zip(a, b)) for d in differences(u, v, f"{where}[{i}]")]
    return [] if a == b else [f"{where}: {a!r} != {b!r}"]


@pytest.fixture(scope="module")
def both_reports(trained_fastnet, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict, str]:
    """The same evaluation in one process and under torchrun with 2 ranks:
    (single report, sharded report, torchrun's stdout)."""
    tmp = tmp_path_factory.mktemp("sharded")
    model = ["eval", "--model", str(trained_fastnet.run), *ARGS]
    single = run_lab(*model, "--report", str(tmp / "single"))
    assert single.returncode == 0, single.stderr
    sharded = torchrun_lab(*model, "--report", str(tmp / "sharded"))
    assert sharded.returncode == 0, sharded.stderr[-3000:]
    load = lambda name: json.loads((tmp / name / "report.json").read_text())  # noqa: E731
    return load("single"), load("sharded"), sharded.stdout


def test_sharded_report_equals_the_single_process_one(both_reports) -> None:
    single, sharded, _ = both_reports
    assert single["meta"]["ranks"] == 1 and sharded["meta"]["ranks"] == 2
    assert differences(comparable(single), comparable(sharded)) == []
    # the comparison had something to compare: attacks that fooled, survivors, checks that ran
    last = sharded["results"][-1]
    assert [a["attack"] for a in last["attacks"]] == ["fgsm", "pgd-20"]
    assert sum(a["fooled"] for r in sharded["results"] for a in r["attacks"]) > 0
    assert sharded["results"][1]["robust_examples"], "no robust example at the smallest eps"
    assert any(c["passed"] is not None for c in sharded["checks"])


def test_only_rank_0_prints(both_reports) -> None:
    """One table and one report line: the other rank prints nothing."""
    _, _, stdout = both_reports
    assert stdout.count("report: ") == 1
    assert stdout.count("clean accuracy") == 1


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--eps", "-0.1"], "epsilon must be a number >= 0, got -0.1"),  # before the ranks join
        (["-n", "100000"], "fashion-mnist has 10000 test images"),  # after they joined
    ],
)
def test_bad_input_under_torchrun_is_one_sentence_and_exit_2(trained_fastnet, tmp_path: Path, args: list[str],
                                                             fragment: str) -> None:  # fmt: skip
    """Every rank exits 2 and one sentence is printed (rank 0's); no traceback from the lab.
    torchrun itself exits 1 on any failed rank and lists the exit codes: 2 for the first
    rank to end, 2 or -15 for the other (torchrun stops the rest with SIGTERM)."""
    proc = torchrun_lab("eval", "--model", str(trained_fastnet.run), "--no-progress", "--report", str(tmp_path / "r"),
                        *args)  # fmt: skip
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and fragment in errors[0], proc.stderr
    root = proc.stderr.split("Root Cause", 1)[-1]
    assert re.findall(r"exitcode\s*:\s*(-?\d+)", root)[:1] == ["2"], proc.stderr
    assert set(re.findall(r"exitcode\s*:\s*(-?\d+)", proc.stderr)) <= {"2", "-15"}, proc.stderr
    assert not re.search(r'File ".*/(lab|attacks|defenses)/', proc.stderr), proc.stderr  # torchrun's own only
    assert not (tmp_path / "r").exists()


def test_an_image_draws_the_same_random_start_anywhere(trained_fastnet) -> None:
    """PGD's result for an image is the same alone, in another batch, at another position:
    its random start is drawn from its own stream (seeded by the image), not the batch's."""
    m, x, y = trained_fastnet.model, trained_fastnet.x[:16], trained_fastnet.y[:16]
    pgd = PGD(eps=0.1, steps=5, restarts=2, precision="fp32")
    start = PGD(eps=0.1, steps=1, alpha=1e-9, early_stop=False, precision="fp32")  # the random start, in effect
    perm = torch.randperm(16, generator=torch.Generator().manual_seed(0))
    for attack in (start, pgd):
        whole = attack(m, x, y)
        torch.testing.assert_close(attack(m, x[perm], y[perm]), whole[perm], rtol=0, atol=1e-6)
        torch.testing.assert_close(torch.cat([attack(m, x[:8], y[:8]), attack(m, x[8:], y[8:])]), whole,
                                   rtol=0, atol=1e-6)  # fmt: skip
    seeds = image_seeds(x, 0)
    assert image_seeds(x[perm], 0) == [seeds[i] for i in perm.tolist()]
    assert len(set(seeds)) == 16 and image_seeds(x, 1) != seeds and image_seeds(x, 0, stream=1) != seeds


def test_the_shard_plan_covers_every_example_once() -> None:
    """Per image: contiguous near-equal parts in batches; per batch: one process's batches
    dealt out in turn; one rank: one process's batches."""
    assert rank_batches(10, 4, Dist(), True) == rank_batches(10, 4, Dist(), False) == [(0, 4), (4, 8), (8, 10)]
    assert [rank_batches(10, 4, Dist(r, 2), True) for r in (0, 1)] == [[(0, 4), (4, 5)], [(5, 9), (9, 10)]]
    assert [rank_batches(10, 4, Dist(r, 2), False) for r in (0, 1)] == [[(0, 4), (8, 10)], [(4, 8)]]
    for n, bs, world in [(0, 3, 2), (1, 5, 3), (17, 4, 3), (500, 500, 2)]:
        for per_image in (True, False):
            covered = sorted(i for r in range(world) for s, e in rank_batches(n, bs, Dist(r, world), per_image)
                             for i in range(s, e))  # fmt: skip
            assert covered == list(range(n))
