"""``--suite autoattack-fast`` against the official AutoAttack (``--suite autoattack``, standard
version): the same models, images, epsilon and machine, one process, through the lab's own
evaluator (:func:`lab.evaluation.engine.evaluate`, gradient-masking checks off for both, so
only the attacks are timed). Per model: both robust accuracies, the images on which they
disagree, both times and the speed ratio.

    python benchmarks/autoattack_fast.py --model runs/a runs/b ... --n 1000 --eps 0.3 \
        [--out benchmarks/results/autoattack_fast.json]

Each finished model is written to ``--out`` at once; run the same command again after an
interruption and the finished models are read back, not run again (``--fresh`` runs the
given models again).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

import torch
from _common import model_and_test_images

from lab.evaluation.engine import evaluate
from lab.evaluation.suites import suite_specs


def run_suite(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, suite: str, eps: float,
              batch_size: int) -> tuple[float, float, set[int], list[dict[str, Any]]]:  # fmt: skip
    t0 = time.perf_counter()
    rep = evaluate(model, x, y, suite_specs(suite), [eps], suite=suite, checks=False, progress=False,
                   batch_size=batch_size)  # fmt: skip
    dt = time.perf_counter() - t0
    res = rep.results[0]
    stages = [{"attack": a.attack, "attacked": a.attacked, "fooled": a.fooled, "seconds": a.seconds,
               "threat": a.threat} for a in res.attacks]  # fmt: skip
    return res.robust_accuracy, dt, set(res.robust_examples), stages


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", nargs="+", required=True, help="run folders")
    ap.add_argument("--n", type=int, default=1000, help="first n test images")
    ap.add_argument("--eps", type=float, default=0.3)
    ap.add_argument("--norm", default="linf")
    ap.add_argument("--batch-size", type=int, default=500)
    ap.add_argument("--out", default="benchmarks/results/autoattack_fast.json")
    ap.add_argument("--fresh", action="store_true", help="run these models again")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    out = Path(args.out)
    done: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
    if args.fresh:  # these models again; the file's other models stay
        done = {k: v for k, v in done.items() if k.split("|")[0] not in args.model}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, first {args.n} test images, "
          f"{args.norm} eps {args.eps:g}")  # fmt: skip
    for path in args.model:
        key = f"{path}|{args.n}|{args.norm}|{args.eps:g}"
        if key not in done:
            ckpt, x, y = model_and_test_images(path, args.n)
            row: dict[str, Any] = {"model": path, "arch": ckpt.info.arch, "n": args.n, "eps": args.eps}
            for suite in ("autoattack-fast", "autoattack"):
                acc, dt, robust, stages = run_suite(ckpt.model, x, y, suite, args.eps, args.batch_size)
                row[suite] = {"robust_accuracy": acc, "seconds": round(dt, 1), "robust": sorted(robust),
                              "stages": stages}  # fmt: skip
                print(f"  {path}: {suite} {100 * acc:.2f}% in {dt:.0f} s", flush=True)
            done[key] = row
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_suffix(".tmp")
            tmp.write_text(json.dumps(done, indent=1))
            tmp.replace(out)
    print("\n| model | n | official AutoAttack | autoattack-fast | difference | images robust in one only "
          "| official time | fast time | speed-up |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for path in args.model:
        r = done[f"{path}|{args.n}|{args.norm}|{args.eps:g}"]
        a, f = r["autoattack"], r["autoattack-fast"]
        only = len(set(a["robust"]) ^ set(f["robust"]))
        diff = 100 * (f["robust_accuracy"] - a["robust_accuracy"])
        print(f"| {path} ({r['arch']}) | {r['n']} | {100 * a['robust_accuracy']:.2f}% | "
              f"{100 * f['robust_accuracy']:.2f}% | {diff:+.2f} points | {only} | {a['seconds']:.0f} s | "
              f"{f['seconds']:.0f} s | {a['seconds'] / max(f['seconds'], 1e-9):.1f}x |")  # fmt: skip


if __name__ == "__main__":
    main()
