"""Where the time of robust work goes: (a) batches of the robust training recipe (the lab's
training step: the defense's inner attack, then the training forward+backward and the
optimizer), (b) one AutoAttack-grade evaluation (official ``autoattack`` or the lab's
``autoattack-fast``) on a few test images.

Each part is split into: the model's forward passes, the backward passes (autograd, inside
the inner attack and in training), the optimizer step, the data (batching on the device), and
the rest (Python: the attack loops' bookkeeping, projections, the evaluator), measured by
wrapping those calls with timers in this process (CPU: no asynchronous work to miss).

    python benchmarks/profile_robust.py train --config configs/mnist_pgd_at_cpu.toml [--batches 60] [--set k=v ...]
    python benchmarks/profile_robust.py eval --model runs/mnist_pgd_at_cpu --suite autoattack-fast [--n 100]
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

import torch
from _common import model_and_test_images

from lab.core.distributed import Dist
from lab.evaluation.engine import evaluate
from lab.evaluation.suites import suite_specs
from lab.training.config import load_config
from lab.training.setup import prepare

SPENT: dict[str, float] = defaultdict(float)
_depth = {"on": 0}


@contextlib.contextmanager
def timer(name: str) -> Iterator[None]:
    """Time a region unless an enclosing timed region already counts it."""
    if _depth["on"]:
        yield
        return
    _depth["on"] += 1
    t = time.perf_counter()
    try:
        yield
    finally:
        SPENT[name] += time.perf_counter() - t
        _depth["on"] -= 1


def wrap(owner: Any, attr: str, name: str) -> Callable[[], None]:
    real = getattr(owner, attr)

    def timed(*a: Any, **k: Any) -> Any:
        with timer(name):
            return real(*a, **k)

    setattr(owner, attr, timed)
    return lambda: setattr(owner, attr, real)


def instrument(model: torch.nn.Module) -> list[Callable[[], None]]:
    """Time every forward of ``model`` and every backward (torch.autograd.grad, Tensor.backward)."""
    undo = [wrap(torch.autograd, "grad", "backward"), wrap(torch.Tensor, "backward", "backward")]
    real_call = type(model).__call__

    def call(self: torch.nn.Module, *a: Any, **k: Any) -> Any:
        if self is not model:
            return real_call(self, *a, **k)
        with timer("forward"):
            return real_call(self, *a, **k)

    type(model).__call__ = call  # type: ignore[method-assign]
    undo.append(lambda: setattr(type(model), "__call__", real_call))
    return undo


def report(total: float, what: str, per: str) -> None:
    rest = total - sum(SPENT.values())
    print(f"\n{what}: {total:.1f} s ({per})")
    print("| part | seconds | share |\n|---|---|---|")
    for k in ("forward", "backward", "optimizer", "data"):
        if k in SPENT:
            print(f"| {k} | {SPENT[k]:.1f} | {100 * SPENT[k] / total:.0f}% |")
    print(f"| rest (Python, attack bookkeeping, projections) | {rest:.1f} | {100 * rest / total:.0f}% |")


def profile_train(args: argparse.Namespace) -> None:
    cfg = load_config(args.config, args.set)
    p = prepare(cfg, Dist())
    dtype, train_data, model, defense, opt = p.dtype, p.train_data, p.model, p.defense, p.opt
    model.train()
    defense.set_progress(1.0)  # past the epsilon warm-up: a full-strength inner attack
    batches = iter(train_data.batches(cfg.train.batch_size, order=train_data.permutation(cfg.seed, 0)))
    undo = instrument(model) + [wrap(opt, "step", "optimizer")]
    steps_per_epoch = math.ceil(len(train_data) / cfg.train.batch_size)
    n = 0
    t0 = time.perf_counter()
    for i in range(args.batches + 1):
        if i == 1:  # the first batch warms up (allocations, oneDNN kernels); not counted
            SPENT.clear()
            n = 0
            t0 = time.perf_counter()
        with timer("data"):
            x, y = next(batches)
            if cfg.runtime.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
        loss, _ = defense.loss(model, x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        n += y.shape[0]
    total = time.perf_counter() - t0
    for u in undo:
        u()
    report(total, f"{args.batches} training batches of {args.config} ({cfg.defense.get('name')}, "
                  f"precision {dtype or 'fp32'}, channels_last {cfg.runtime.channels_last})",
           f"{n / total:.0f} img/s; a whole epoch of {steps_per_epoch} batches: about "
           f"{total / args.batches * steps_per_epoch:.0f} s")  # fmt: skip


def profile_eval(args: argparse.Namespace) -> None:
    ckpt, x, y = model_and_test_images(args.model, args.n)
    model = ckpt.model
    undo = instrument(model)
    t0 = time.perf_counter()
    rep = evaluate(model, x, y, suite_specs(args.suite), [args.eps], checks=False, progress=False)
    total = time.perf_counter() - t0
    for u in undo:
        u()
    report(total, f"--suite {args.suite} on {args.n} images of {args.model} at eps {args.eps:g}",
           f"robust accuracy {100 * rep.results[0].robust_accuracy:.2f}%")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    t = sub.add_parser("train")
    t.add_argument("--config", required=True)
    t.add_argument("--batches", type=int, default=60)
    t.add_argument("--set", action="append", default=[])
    e = sub.add_parser("eval")
    e.add_argument("--model", required=True)
    e.add_argument("--suite", default="autoattack")
    e.add_argument("--n", type=int, default=100)
    e.add_argument("--eps", type=float, default=0.3)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    profile_train(args) if args.what == "train" else profile_eval(args)


if __name__ == "__main__":
    main()
