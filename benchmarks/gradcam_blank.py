"""Blank Grad-CAM maps: how many of the first N test images get an all-zero Grad-CAM (and
Guided Grad-CAM) map, on the architecture's default layer and on the layers you name.

    python benchmarks/gradcam_blank.py --model runs/mnist_smallcnn [--model RUN ...] [--n 200]
                                       [--layer features.7 ...]

A blank map says nothing to the person looking at it; on a pre-ReLU convolution (signed
activations) many are blank, on the rectified output (the Grad-CAM paper's layer and the
lab's default) few.
"""

from __future__ import annotations

import argparse
import warnings

import torch
from _common import model_and_test_images

from explain import EXPLAINERS
from explain.layers import default_layer_name


def blank(maps: torch.Tensor) -> int:
    return int((maps.flatten(1).abs().amax(1) <= 0).sum())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", action="append", required=True, help="run folder (repeatable)")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--layer", action="append", default=[], help="another layer to count on (repeatable)")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    print("| model | layer | Grad-CAM blank | Guided Grad-CAM blank |")
    print("|---|---|---|---|")
    for run in args.model:
        ck, x, _ = model_and_test_images(run, args.n)
        for layer in [None, *args.layer]:
            name = default_layer_name(ck.model) + " (default)" if layer is None else layer
            counts = [blank(EXPLAINERS.get(m)(layer=layer)(ck.model, x)) for m in ("gradcam", "guided_gradcam")]
            print(f"| {run} | {name} | {counts[0]} / {len(x)} | {counts[1]} / {len(x)} |", flush=True)


if __name__ == "__main__":
    main()
