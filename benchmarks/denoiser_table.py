"""The README's denoiser table, read from ``lab eval`` reports (nothing is recomputed).

    python benchmarks/denoiser_table.py runs/mnist_smallcnn runs/mnist_dae runs/mnist_hgd ...

For each run it reads ``RUN/eval/<suite>-linf/report.json`` (default suite ``extended``)
and prints one Markdown row: clean accuracy, then per epsilon each threat row's own
robust accuracy (gray-box, white-box, BPDA, EOT where the defense needs them) and the
robust accuracy itself: the per-image worst case over every attack of every row, which
is never above the lowest row (and is below it when different rows fool different
images); then the failed gradient-masking checks and the evaluation's time.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lab.core.errors import LabError
from lab.evaluation.report import RobustnessReport


def pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--suite", default="extended")
    args = ap.parse_args(argv)
    reports = []
    for run in args.runs:
        path = Path(run) / "eval" / f"{args.suite}-linf" / "report.json"
        try:
            reports.append((run, RobustnessReport.load(path)))
        except LabError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    eps = [e for e in reports[0][1].eps if e > 0]
    head = ["model", "clean"]
    for e in eps:
        head += [f"gray-box {e:g}", f"white-box {e:g}", f"BPDA {e:g}", f"EOT {e:g}", f"lowest row {e:g}",
                 f"**robust {e:g}** (all rows)"]  # fmt: skip
    head += ["masking checks failed", "eval time"]
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join(" --- " for _ in head) + "|")
    for run, rep in reports:
        arch = str(rep.model.get("arch", run))
        cells = [f"`{arch}`", pct(rep.clean_accuracy)]
        for e in eps:
            r = rep.result_at(e)
            rows = r.rows or {"white-box": r.robust_accuracy}
            lowest = min(rows.values())
            cells += [pct(rows.get("gray-box")), pct(rows.get("white-box")), pct(rows.get("bpda")),
                      pct(rows.get("eot")), pct(lowest), f"**{pct(r.robust_accuracy)}**"]  # fmt: skip
        failed = [c.name for c in rep.failed_checks]
        cells += [", ".join(failed) or "none", f"{rep.seconds:.0f} s"]
        print("| " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
