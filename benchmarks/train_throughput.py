"""Training throughput: the lab's training loop against a plain PyTorch loop, one process.

Same model (SmallCNN), batch size, data (the first N MNIST training images), optimizer
(SGD, momentum 0.9, Nesterov, weight decay) and machine. The plain loop is the
textbook one: a ``Dataset`` that converts and normalizes one uint8 image per
``__getitem__``, a ``DataLoader`` with shuffling, ``zero_grad()``, fp32, contiguous
tensors and ``loss.item()`` every step. The lab's numbers come from ``lab.training.loop.train``
itself (its per-epoch images/s, which excludes evaluation and checkpoint writes), run
with its speed features switched on one at a time so each one's share is visible.

    python benchmarks/train_throughput.py [--n 25600] [--epochs 2] [--dataset mnist]

Prints images/s of the last epoch for each variant and the ratio to the plain loop.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset

from lab.core.runtime import cpu_has_fast_bf16
from lab.data import load_dataset
from lab.models import ModelInfo, build_model
from lab.training.config import from_dict
from lab.training.loop import train


class PlainImages(TorchDataset):  # type: ignore[type-arg]
    """What a torchvision-style dataset does: one image at a time, to float, normalized."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, mean: float, std: float) -> None:
        self.x, self.y, self.mean, self.std = x, y, mean, std

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return (self.x[i].float() / 255.0 - self.mean) / self.std, self.y[i]


def plain_loop(x: torch.Tensor, y: torch.Tensor, info: ModelInfo, batch: int, epochs: int, lr: float) -> float:
    """The reference loop; returns images/s of its last epoch."""
    torch.manual_seed(0)
    model = build_model(info).net  # the bare network: the plain loop normalizes in the Dataset
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    loader = DataLoader(PlainImages(x, y, info.mean[0], info.std[0]), batch_size=batch, shuffle=True)
    rate = 0.0
    for _ in range(epochs):
        model.train()
        t0, seen, running = time.perf_counter(), 0, 0.0
        for xb, yb in loader:
            opt.zero_grad()
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            running += loss.item()
            seen += len(yb)
        rate = seen / (time.perf_counter() - t0)
    return rate


def lab_loop(dataset: str, n: int, batch: int, epochs: int, lr: float, **runtime: object) -> float:
    sets = [f"runtime.{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in runtime.items()]
    cfg = from_dict(
        {"data": {"dataset": dataset, "train_subset": n, "test_subset": 1000},
         "model": {"arch": "smallcnn"},
         "train": {"epochs": epochs, "batch_size": batch, "lr": lr, "schedule": "constant"}},
        ["runtime.device=cpu", *sets],
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        result = train(cfg, tmp, progress=False)
    return float(result.history[-1]["images_per_s"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--n", type=int, default=25600, help="training images per epoch")
    ap.add_argument("--epochs", type=int, default=2, help="epochs per variant (the last is timed)")
    ap.add_argument("--batch", type=int, default=128)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    lr = 0.01

    ds = load_dataset(args.dataset)
    x = torch.from_numpy(ds.train_x[: args.n])
    y = torch.from_numpy(ds.train_y[: args.n])
    info = ModelInfo("smallcnn", ds.name, ds.input_shape, ds.class_names, ds.mean, ds.std)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU native bf16: {cpu_has_fast_bf16()}")
    print(f"SmallCNN, {ds.name}, {args.n} images/epoch, batch {args.batch}, last of {args.epochs} epochs timed\n")

    plain = plain_loop(x, y, info, args.batch, args.epochs, lr)
    rows = [("plain PyTorch loop (DataLoader, fp32)", plain)]
    variants = [
        ("lab: device data, fp32, contiguous", {"precision": "fp32", "channels_last": False}),
        ("lab: + channels_last", {"precision": "fp32", "channels_last": True}),
        ("lab: + bf16 autocast (default)", {"precision": "auto", "channels_last": True}),
    ]
    for name, rt in variants:
        rows.append((name, lab_loop(args.dataset, args.n, args.batch, args.epochs, lr, **rt)))
    width = max(len(r[0]) for r in rows)
    print(f"{'loop'.ljust(width)}  {'img/s':>8}  {'vs plain':>8}")
    for name, rate in rows:
        print(f"{name.ljust(width)}  {rate:8.0f}  {rate / plain:7.2f}x")


if __name__ == "__main__":
    main()
