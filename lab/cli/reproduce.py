"""``lab reproduce``: the published defenses of a benchmark, trained and evaluated with the
official AutoAttack, beside the published numbers (a sweep underneath: it resumes)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from lab.cli.sweep import DEFAULT_ROOT, summary_lines
from lab.core.io import atomic_write_bytes
from lab.experiments.engines import InProcess
from lab.experiments.reproduce import benchmark_spec, load_benchmark, reproduce_rows
from lab.experiments.sweep import run_sweep
from lab.present.sweeps import reproduce_markdown


def run(args: argparse.Namespace) -> int:
    bench = load_benchmark(args.benchmark)
    spec = benchmark_spec(bench, args.budget, args.n, args.data_dir or "")
    out = Path(args.out) if args.out else Path(DEFAULT_ROOT) / spec.name
    t0 = time.perf_counter()
    engine = InProcess(device=args.device, data_dir=spec.data_dir, progress=not args.no_progress)
    res = run_sweep(spec, out, engine=engine, progress=not args.no_progress)
    for line in summary_lines(res):
        print(line)
    text = reproduce_markdown(bench, reproduce_rows(bench, out), args.budget, time.perf_counter() - t0)
    atomic_write_bytes(out / "reproduce.md", (text + "\n").encode())
    print()
    print(text)
    print(f"\nreproduce.md -> {out}")
    return 1 if res.failed or res.blocked else 0
