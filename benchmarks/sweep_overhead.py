"""What the sweep's store and scheduling cost: a sweep against the same `lab train` / `lab eval`
commands run one after another, on the same machine, and whether they measure the same.

    python benchmarks/sweep_overhead.py configs/sweeps/mnist_tradeoff.toml --out /tmp/overhead

Runs ``lab sweep run SPEC --out OUT/sweep`` and, for the same grid, each model's
``lab train --config RECIPE --set KEY=VALUE ... --set seed=S --out OUT/seq/<cell>`` then its
``lab eval`` with the entry's suite, radii and images (the commands are printed); both in
subprocesses with the same environment, one after the other (never side by side: two torch
jobs on a small machine distort each other's times). Prints both wall times, their ratio,
and whether every evaluation's robust accuracy per radius agrees between the two. Sweeps
with [[explain]] entries are refused (`lab explain --metrics` is not one cell per method).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from lab.experiments.graph import plan
from lab.experiments.spec import load_spec, override_text
from lab.experiments.tables import records

LAB = str(Path(sys.executable).parent / "lab")


def _run(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("spec")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    spec = load_spec(args.spec)
    if spec.explain:
        raise SystemExit("this benchmark compares trainings and evaluations only; the sweep has [[explain]] entries")
    out = Path(args.out)
    cells = plan(spec)
    by_key = {c.key: c for c in cells}
    models = {m["name"]: m for m in spec.models}
    commands: list[list[str]] = []
    folders: dict[str, Path] = {}
    for c in cells:
        if c.kind == "train":
            m = models[c.axes["model"]]
            folder = out / "seq" / f"{c.axes['model']}-seed{c.axes['seed']}"
            folders[c.key] = folder
            cmd = [LAB, "train", "--config", m["recipe"], "--out", str(folder), "--no-progress"]
            for k, v in m["set"].items():
                cmd += ["--set", override_text(k, v)]
            commands.append(cmd + ["--set", f"seed={c.axes['seed']}"])
        elif c.kind == "evaluate":
            s = c.settings
            dep = folders[c.deps[0]]
            cmd = [LAB, "eval", "--model", str(dep), "--norm", s["norm"], "--n", str(s["n"]), "--offset",
                   str(s["offset"]), "--batch-size", str(s["batch_size"]), "--probe-n", str(s["probe_n"]),
                   "--report", str(dep / "eval" / c.key), "--no-progress"]  # fmt: skip
            if s["suite"]:
                cmd += ["--suite", s["suite"]]
            for a in s["attacks"]:
                cmd += ["--attack", a]
            if s["eps"] is not None:
                cmd += ["--eps", ",".join(repr(e) for e in s["eps"])]
            if not s["checks"]:
                cmd.append("--no-checks")
            if s["precision"]:
                cmd += ["--precision", s["precision"]]
            commands.append(cmd)
        else:
            raise SystemExit(f"cell kind {c.kind} has no one-command equivalent here")
    t_sweep = _run([LAB, "sweep", "run", args.spec, "--out", str(out / "sweep"), "--no-progress"])
    t_seq = 0.0
    for cmd in commands:
        print(" ".join(cmd[1:]), flush=True)
        t_seq += _run(cmd)
    # the same numbers?
    swept = {(r["label"], r["eps"]): r["value"] for r in records(out / "sweep") if r["metric"] == "robust_accuracy"}
    same = True
    for c in cells:
        if c.kind != "evaluate":
            continue
        report = json.loads((folders[c.deps[0]] / "eval" / c.key / "report.json").read_text())
        for r in report["results"]:
            if swept.get((c.label, r["eps"])) != r["robust_accuracy"]:
                same = False
                print(f"differs: {c.label} eps {r['eps']}: sweep {swept.get((c.label, r['eps']))}, "
                      f"commands {r['robust_accuracy']}")  # fmt: skip
    print(f"\n{len(by_key)} cells: lab sweep run {t_sweep:.1f} s; the same {len(commands)} commands one after "
          f"another {t_seq:.1f} s; sweep / commands = {t_sweep / t_seq:.3f}")  # fmt: skip
    print("every robust accuracy agrees" if same else "SOME NUMBERS DIFFER")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
