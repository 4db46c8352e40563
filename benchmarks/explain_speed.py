"""Explanation speed: the lab's explainers against calling captum directly, one process.

Same model, images and settings: integrated gradients (50 steps), SmoothGrad (25 noisy
samples) and Grad-CAM (upsampled), each timed through ``explain.EXPLAINERS`` (input
checks, eval mode, hook bookkeeping, RNG forking included) and through the bare captum
call. Prints images/s and the lab/captum ratio, and the peak memory of 50-step
integrated gradients on a batch of 256: the lab with its default internal batch (64),
captum with the same ``internal_batch_size=64`` (like with like: the two should match),
and captum with its default (no internal batch: all 256 x 50 inputs at once), which is
what the lab's default saves a user from.

    python benchmarks/explain_speed.py --model runs/mnist_smallcnn [--n 64] [--repeats 3]
"""

from __future__ import annotations

import argparse
import logging
import time
import warnings
from collections.abc import Callable

import torch
from _common import model_and_test_images
from captum.attr import IntegratedGradients, LayerAttribution, LayerGradCam, NoiseTunnel, Saliency

from explain import EXPLAINERS
from explain.layers import resolve_layer


def best_rate(fn: Callable[[], object], n: int, repeats: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return n / best


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def peak_mib(fn: Callable[[], object], device: torch.device) -> float:
    """Peak memory the call adds: the CUDA allocator's peak on GPU; on Linux CPUs the rise
    of the process's peak resident set (reset through /proc/self/clear_refs) over its size
    before the call."""
    if device.type == "cuda":
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        return (torch.cuda.max_memory_allocated(device) - base) / 2**20
    with open("/proc/self/clear_refs", "w") as fh:  # resets VmHWM to the current RSS
        fh.write("5")
    before = _status_kib("VmRSS")
    fn()
    return (_status_kib("VmHWM") - before) / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="runs/mnist_smallcnn")
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore", category=UserWarning)

    ckpt, x, _ = model_and_test_images(args.model, max(args.n, 256))
    model = ckpt.model
    device = x.device
    x, big = x[: args.n], x[:256]
    with torch.no_grad():
        target = model(x).argmax(1)
    zeros = torch.zeros_like(x)
    layer = resolve_layer(model, None)
    print(f"{ckpt.info.arch} on {ckpt.info.dataset}, {args.n} images, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, device {device}\n")  # fmt: skip

    lab_ig = EXPLAINERS.get("integrated_gradients")(n_steps=50, internal_batch_size=64)
    lab_sg = EXPLAINERS.get("smoothgrad")(nt_samples=25, stdevs=0.15, nt_samples_batch_size=25)
    lab_cam = EXPLAINERS.get("gradcam")()

    def captum_ig() -> torch.Tensor:
        return IntegratedGradients(model).attribute(x, baselines=zeros, target=target, n_steps=50,
                                                    internal_batch_size=64)  # fmt: skip

    def captum_sg() -> torch.Tensor:
        return NoiseTunnel(Saliency(model)).attribute(x, nt_type="smoothgrad", nt_samples=25, stdevs=0.15,
                                                      nt_samples_batch_size=25, target=target, abs=True)  # fmt: skip

    def captum_cam() -> torch.Tensor:
        cam = LayerGradCam(model, layer).attribute(x, target=target, relu_attributions=True)
        return LayerAttribution.interpolate(cam, tuple(x.shape[2:]), interpolate_mode="bilinear")

    rows = [
        ("integrated gradients, 50 steps", lambda: lab_ig(model, x, target), captum_ig),
        ("SmoothGrad, 25 samples", lambda: lab_sg(model, x, target), captum_sg),
        ("Grad-CAM (upsampled)", lambda: lab_cam(model, x, target), captum_cam),
    ]
    print(f"{'method':32s} {'lab img/s':>10s} {'captum img/s':>13s} {'lab/captum':>10s}")
    for name, lab_fn, cap_fn in rows:
        lab_rate = best_rate(lab_fn, args.n, args.repeats)
        cap_rate = best_rate(cap_fn, args.n, args.repeats)
        print(f"{name:32s} {lab_rate:10.1f} {cap_rate:13.1f} {lab_rate / cap_rate:9.2f}x")

    big_t = target.new_zeros(len(big))
    bounded = peak_mib(lambda: lab_ig(model, big, big_t), device)
    same = peak_mib(lambda: IntegratedGradients(model).attribute(big, baselines=torch.zeros_like(big), target=big_t,
                                                                 n_steps=50, internal_batch_size=64), device)  # fmt: skip
    unbounded = peak_mib(lambda: IntegratedGradients(model).attribute(big, baselines=torch.zeros_like(big),
                                                                      target=big_t, n_steps=50), device)  # fmt: skip
    print(f"\npeak memory added, integrated gradients 50 steps on a batch of {len(big)}: lab (internal batch 64) "
          f"{bounded:.0f} MiB, captum with internal_batch_size=64 {same:.0f} MiB, captum with its default "
          f"(no internal batch) {unbounded:.0f} MiB")  # fmt: skip

if __name__ == "__main__":
    main()
