"""`kill -9` a sweep at random moments, resume it, and compare its tables with an
uninterrupted run's.

    python benchmarks/sweep_crash.py configs/sweeps/mnist_tradeoff.toml --reference sweeps/mnist_tradeoff \\
        --out /tmp/crashed --kills 3 --seed 0

``--reference``: a folder where the same sweep ran without interruption (run it first with
``lab sweep run SPEC --out REF``). The script starts ``lab sweep run SPEC --out OUT``, kills
it with SIGKILL at a moment drawn uniformly from the reference's wall time (seeded), checks
that the store is readable and that every cell it calls done has its folder, and starts it
again; ``--kills`` times, then once to the end. Prints each kill (when, which cells were
running) and whether every table (robust accuracy by radius, clean accuracy and test
accuracy by seed, per model: every seed's value) equals the reference's exactly.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from lab.experiments.sweep import sweep_status
from lab.experiments.tables import sweep_table

LAB = str(Path(sys.executable).parent / "lab")
TABLES = (("robust_accuracy", "eps"), ("clean_accuracy", "seed"), ("test_acc", "seed"))


def tables(folder: Path) -> dict[str, object]:
    """The numbers of each table (labels and cells: every value of every seed), not its warnings."""
    out = {}
    for m, c in TABLES:
        d = sweep_table(folder, m, rows="model", cols=c).to_dict()
        out[m] = {k: d[k] for k in ("row_labels", "col_labels", "cells")}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("spec")
    ap.add_argument("--reference", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--kills", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    ref = Path(args.reference)
    ref_status = sweep_status(ref)
    total = sum(r.seconds or 0.0 for r in ref_status.cells)
    rng = random.Random(args.seed)
    out = Path(args.out)
    cmd = [LAB, "sweep", "run", args.spec, "--out", str(out), "--no-progress"]
    t0 = time.perf_counter()
    for k in range(args.kills):
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait = rng.uniform(5.0, max(6.0, total / args.kills))
        try:
            proc.wait(timeout=wait)
            print(f"kill {k + 1}: the sweep finished before {wait:.0f} s")
            break
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        st = sweep_status(out)  # readable after the kill
        missing = [r.label for r in st.cells if r.status == "done" and not (out / "cells" / r.key).is_dir()]
        running = [r.label for r in st.cells if r.status == "running"]
        print(f"kill {k + 1} after {wait:.0f} s: {st.counts['done']} done, interrupted: {', '.join(running) or '-'}"
              + (f"; DONE WITHOUT FILES: {missing}" if missing else ""), flush=True)  # fmt: skip
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    st = sweep_status(out)
    same = tables(out) == tables(ref)
    print(f"resumed to {st.counts['done']}/{sum(st.counts.values())} done in {time.perf_counter() - t0:.0f} s "
          f"in all; tables {'IDENTICAL to' if same else 'DIFFERENT from'} the uninterrupted run's")  # fmt: skip
    if not same:
        print(json.dumps({"crashed": tables(out), "reference": tables(ref)}, indent=1)[:4000])
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
