"""``lab sweep``: run a grid of trainings, evaluations and explanations into a crash-safe
store (``run``), and read it back (``status``, ``table``, ``plot``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lab.core.errors import LabError
from lab.experiments.engines import InProcess, RayEngine, Workers
from lab.experiments.spec import load_spec
from lab.experiments.sweep import SweepResult, run_sweep, sweep_status
from lab.experiments.tables import sweep_table
from lab.present.sweeps import PLOTS, save_plot, status_lines, table_text

DEFAULT_ROOT = "sweeps"


def parse_where(items: list[str]) -> dict[str, str]:
    """``--where eval=quick-linf`` (repeatable) -> {"eval": "quick-linf"}."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise LabError(f"--where {item!r} must be AXIS=VALUE, e.g. eval=quick-linf")
        out[key.strip()] = value.strip()
    return out


def _engine(args: argparse.Namespace, data_dir: str) -> InProcess:
    if args.engine == "ray":
        if args.workers != 1:
            raise LabError("--workers is for --engine local; a Ray cluster runs as many cells as it has CPUs")
        return RayEngine(address=args.address, cpus_per_cell=args.cpus_per_cell, data_dir=data_dir, device=args.device)
    if args.address:
        raise LabError("--address is for --engine ray")
    if args.workers > 1:
        return Workers(args.workers, device=args.device, data_dir=data_dir)
    if args.workers < 1:
        raise LabError(f"--workers must be >= 1, got {args.workers}")
    return InProcess(device=args.device, data_dir=data_dir, progress=not args.no_progress)


def summary_lines(res: SweepResult) -> list[str]:
    lines = [f"{len(res.ran)} cell(s) ran, {len(res.skipped)} were done before, {len(res.failed)} failed, "
             f"{len(res.blocked)} wait on a failed cell; {res.seconds:.1f} s -> {res.folder}"]  # fmt: skip
    lines += [f"  failed [{k}]: {err}" for k, err in res.failed.items()]
    return lines


def run(args: argparse.Namespace) -> int:
    verb = args.sweep_command
    if verb == "run":
        spec = load_spec(args.spec)
        if args.data_dir:
            spec.data_dir = args.data_dir
        out = Path(args.out) if args.out else Path(DEFAULT_ROOT) / spec.name
        engine = _engine(args, spec.data_dir)
        res = run_sweep(spec, out, engine=engine, retry_failed=args.retry_failed, progress=not args.no_progress,
                        max_cells=args.max_cells)  # fmt: skip
        for line in summary_lines(res):
            print(line)
        return 1 if res.failed or res.blocked else 0
    folder = Path(args.folder)
    if verb == "status":
        st = sweep_status(folder)
        if args.json:
            print(json.dumps(st.to_dict(), indent=2))
        else:
            print("\n".join(status_lines(st, cells=args.cells)))
        return 0
    where = parse_where(args.where)
    if verb == "table":
        t = sweep_table(folder, args.metric, rows=args.rows, cols=args.cols, where=where)
        text = table_text(t, args.format)
        if args.format == "csv":
            for w in t.warnings:  # the Markdown and JSON carry them
                print(f"warning: {w}", file=sys.stderr)
        if args.output:
            Path(args.output).write_text(text + ("\n" if not text.endswith("\n") else ""), encoding="utf-8")
            print(f"{args.format} -> {args.output}")
        else:
            print(text)
        return 0
    kinds = list(PLOTS) if args.kind == "all" else [args.kind]
    out_dir = Path(args.out) if args.out else folder / "plots"
    st = sweep_status(folder)
    for kind in kinds:
        try:
            path = save_plot(kind, folder, out_dir / f"{kind}.png", st, where=where, metric=args.metric, by=args.by)
        except LabError as exc:
            if args.kind != "all":
                raise
            print(f"{kind}: not drawn ({exc})", file=sys.stderr)
            continue
        print(f"{kind} -> {path}")
    return 0
