"""bf16 steering against fp32: the robust accuracy the lab's gradient attacks find, and
their time, with ``precision="auto"`` (forward/backward passes that only steer the attack
run under bf16 autocast where the hardware has native bf16; every success is confirmed
in fp32 and the evaluator judges the returned images in fp32) and with ``precision="fp32"``.

    python benchmarks/precision_table.py --model runs/mnist_smallcnn --eps 0.1 [--n 1000]
    python benchmarks/precision_table.py --model runs/mnist_fastnet_pgd_at --eps 0.3

Prints one Markdown row per attack: robust accuracy in each precision, the difference in
points, each time and the speed ratio. On a machine without native bf16 ``auto`` is fp32
and the two columns agree exactly (the script says so).
"""

from __future__ import annotations

import argparse
import logging
import time

import torch
from _common import model_and_test_images

from lab.core.runtime import pick_dtype
from lab.evaluation.engine import AttackSpec, evaluate

ATTACKS = [AttackSpec("pgd", {"steps": 20}), AttackSpec("pgd", {"steps": 100, "loss": "margin"})]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="runs/mnist_smallcnn")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--eps", type=float, default=0.1)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    ckpt, x, y = model_and_test_images(args.model, args.n)
    model = ckpt.model
    steer = pick_dtype("auto", x.device)
    print(f"{ckpt.info.arch} on {ckpt.info.dataset} ({args.model}), first {args.n} test images, L-inf eps "
          f"{args.eps:g}; torch {torch.__version__}, {torch.get_num_threads()} threads; auto steers in "
          f"{'bf16' if steer is not None else 'fp32 (no native bf16 here: both columns are the same attack)'}\n")
    print("| attack | robust acc, auto | robust acc, fp32 | difference | time auto | time fp32 | speed-up |")
    print("|---|---|---|---|---|---|---|")
    for spec in ATTACKS:
        acc: dict[str, float] = {}
        secs: dict[str, float] = {}
        for prec in ("auto", "fp32"):
            t0 = time.perf_counter()
            rep = evaluate(model, x, y, [spec], [args.eps], checks=False, progress=False, precision=prec)
            secs[prec] = time.perf_counter() - t0
            acc[prec] = rep.results[0].robust_accuracy
        print(f"| {spec.title} | {100 * acc['auto']:.2f}% | {100 * acc['fp32']:.2f}% | "
              f"{100 * (acc['auto'] - acc['fp32']):+.2f} | {secs['auto']:.1f} s | {secs['fp32']:.1f} s | "
              f"{secs['fp32'] / secs['auto']:.2f}x |")


if __name__ == "__main__":
    main()
