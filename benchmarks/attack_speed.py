"""Attack speed: the lab against foolbox and torchattacks, same model, data and machine,
one process.

(a) Fixed-budget PGD generation (L-inf, 20 steps, random start, the same step size, no
    early stopping): images/s of the lab's ``pgd`` in fp32 and in its default precision
    (``auto``: bf16 steering where the CPU/GPU has native bf16, every success confirmed in
    fp32), foolbox's ``LinfPGD`` and torchattacks' ``PGD`` (both always fp32); ratio to the
    fastest peer.
(b) Robust accuracy to the same answer: the lab's evaluator (PGD-20 with its active set
    and early stopping, in fp32 and in its default precision) against foolbox's
    ``LinfPGD`` (fp32) run the usual way over every image; the robust accuracies and the
    speed ratios, with a random start (each library draws its own, so the answers differ by
    the start's noise) and without one. Without a random start the two are still not the
    same attack: the lab stops an example at the first iterate that fools (and keeps it),
    foolbox returns the last iterate, and bf16 steering takes slightly different steps.

    python benchmarks/attack_speed.py --model runs/mnist_smallcnn [--n 500] [--eps 0.3 0.1]

torchattacks is installed without its dependencies (it pins requests and pulls
torchvision, which the lab avoids): ``pip install --no-deps torchattacks``.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable

import foolbox as fb
import torch
from _common import model_and_test_images

from attacks import ATTACKS
from lab.evaluation.engine import AttackSpec, evaluate

try:
    import torchattacks
except ImportError:  # pragma: no cover - an optional peer, installed by `make bench` only
    torchattacks = None

STEPS = 20


def timed(fn: Callable[[], torch.Tensor], n: int, repeats: int) -> tuple[float, torch.Tensor]:
    """Best-of-``repeats`` images/s of ``fn`` (after one warm-up call) and its last output."""
    out = fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return n / best, out


def robust_acc(model: torch.nn.Module, x_adv: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x_adv).argmax(1) == y).float().mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="runs/mnist_smallcnn")
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--eps", type=float, nargs="+", default=[0.3, 0.1])
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)

    ckpt, x, y = model_and_test_images(args.model, args.n)
    model = ckpt.model
    fmodel = fb.PyTorchModel(model, bounds=(0, 1))
    print(f"{ckpt.info.arch} on {ckpt.info.dataset} ({args.model}), {args.n} test images, torch "
          f"{torch.__version__}, {torch.get_num_threads()} threads")  # fmt: skip

    for eps in args.eps:
        alpha = 2.5 * eps / STEPS
        print(f"\n== eps {eps:g}, PGD-{STEPS}, step {alpha:.4g} ==")
        print("(a) fixed-budget generation (no early stopping)")
        rows: list[tuple[str, float, float]] = []
        for prec in ("fp32", "auto"):
            lab_pgd = ATTACKS.get("pgd")(eps=eps, steps=STEPS, alpha=alpha, early_stop=False, precision=prec)
            rate, adv = timed(lambda a=lab_pgd: a(model, x, y), args.n, args.repeats)
            rows.append((f"lab pgd ({prec})", rate, robust_acc(model, adv, y)))
        fb_pgd = fb.attacks.LinfPGD(abs_stepsize=alpha, steps=STEPS, random_start=True)
        rate, adv = timed(lambda a=fb_pgd, e=eps: a(fmodel, x, y, epsilons=e)[1], args.n, args.repeats)
        peers = [("foolbox LinfPGD (fp32)", rate, robust_acc(model, adv, y))]
        if torchattacks is not None:
            ta_pgd = torchattacks.PGD(model, eps=eps, alpha=alpha, steps=STEPS, random_start=True)
            rate, adv = timed(lambda a=ta_pgd: a(x, y), args.n, args.repeats)
            peers.append(("torchattacks PGD (fp32)", rate, robust_acc(model, adv, y)))
        fastest = max(r for _, r, _ in peers)
        for name, rate, acc in rows + peers:
            print(f"  {name:22s} {rate:8.1f} img/s  {rate / fastest:5.2f}x fastest peer  robust acc {100 * acc:6.2f}%")

        print("(b) robust accuracy to the same answer (the lab's evaluator vs foolbox over every image)")
        for random_start in (True, False):
            fb_run = fb.attacks.LinfPGD(abs_stepsize=alpha, steps=STEPS, random_start=random_start)
            t0 = time.perf_counter()
            _, _, success = fb_run(fmodel, x, y, epsilons=eps)
            t_fb = time.perf_counter() - t0
            acc_fb = 1.0 - float(success.float().mean())
            print(f"  random start {str(random_start):5s}: foolbox (fp32) {t_fb:6.2f} s, {100 * acc_fb:6.2f}%")
            for prec in ("auto", "fp32"):
                spec = AttackSpec("pgd", {"steps": STEPS, "alpha": alpha, "random_start": random_start})
                t0 = time.perf_counter()
                report = evaluate(model, x, y, [spec], [eps], checks=False, progress=False, precision=prec)
                t_lab = time.perf_counter() - t0
                acc_lab = report.results[0].robust_accuracy
                print(f"    lab ({prec:4s}) {t_lab:6.2f} s, {100 * acc_lab:6.2f}%   speed-up {t_fb / t_lab:5.2f}x, "
                      f"difference {100 * (acc_lab - acc_fb):+.2f} points")  # fmt: skip


if __name__ == "__main__":
    main()
