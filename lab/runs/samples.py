"""Which images an evaluation or an attack runs on: the first ``n`` test images of the
model's own dataset (deterministic, verified to be the data it was trained on), or image
files a user hands in (PNG / JPEG, read by :mod:`lab.data.images`: checked from the header,
converted to the model's channels with a note per conversion, size checked).

Both return numpy arrays (uint8 [N, C, H, W], int64 labels or None); :func:`to_tensor`
turns images into the float [0, 1] tensors models take (:func:`lab.data.pixels.to_float`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from lab.core.errors import LabError
from lab.data import load_dataset
from lab.data.images import IMAGE_FORMATS, MAX_PIXELS, read_image
from lab.data.pixels import to_float
from lab.models import ModelInfo

log = logging.getLogger(__name__)

__all__ = ["IMAGE_FORMATS", "MAX_PIXELS", "Samples", "from_files", "from_test_set", "to_tensor"]


@dataclass
class Samples:
    """Images uint8 [N, C, H, W] with labels int64 [N] (None for user files) and provenance."""

    x: np.ndarray
    y: np.ndarray | None
    source: dict[str, Any]  # dataset/split/offset/n, or the file list
    names: list[str] = field(default_factory=list)  # per image: "test[123]" or a file path
    test_indices: list[int] | None = None
    notes: list[str] = field(default_factory=list)  # conversions made to user files: "<file>: <note>"


def from_test_set(info: ModelInfo, n: int, offset: int = 0, data_dir: str | os.PathLike[str] | None = None) -> Samples:
    """The test images ``offset .. offset+n-1`` of the dataset ``info`` was trained on.

    LabError when ``n``/``offset`` do not fit the test set, or when the dataset found here
    is not the one the model was trained on (its content fingerprint differs).
    """
    if not isinstance(n, int) or n < 1:
        raise LabError(f"the number of test images must be a whole number >= 1, got {n!r}")
    if not isinstance(offset, int) or offset < 0:
        raise LabError(f"the index of the first test image must be a whole number >= 0, got {offset!r}")
    ds = load_dataset(info.dataset, data_dir)
    if info.dataset_fingerprint and ds.fingerprint != info.dataset_fingerprint:
        raise LabError(
            f"the {ds.name} data found here ({ds.source}, fingerprint {ds.fingerprint[:12]}…) differs from "
            f"the data the model was trained on (fingerprint {info.dataset_fingerprint[:12]}…)"
        )
    if not info.dataset_fingerprint:
        log.warning("the checkpoint records no dataset fingerprint; cannot verify it matches %s", ds.name)
    total = len(ds.test_y)
    if offset + n > total:
        raise LabError(
            f"{n} test images from index {offset} reach index {offset + n - 1}, "
            f"but {ds.name} has {total} test images"
        )
    if tuple(ds.input_shape) != tuple(info.input_shape):
        raise LabError(f"{ds.name} images are {ds.input_shape} but the model takes {tuple(info.input_shape)}")
    stop = offset + n
    return Samples(
        x=ds.test_x[offset:stop],
        y=ds.test_y[offset:stop].astype(np.int64),
        source={
            "dataset": ds.name, "split": "test", "offset": offset, "n": n, "index_start": offset,
            "index_stop": stop, "fingerprint": ds.fingerprint, "from": ds.source,
        },
        names=[f"test[{i}]" for i in range(offset, stop)],
        test_indices=list(range(offset, stop)),
    )


def from_files(paths: Sequence[str | os.PathLike[str]], info: ModelInfo) -> Samples:
    """User image files, in the order given; no labels (attacks then use the predictions).

    Each file is read by :func:`lab.data.images.read_image` (checked from its header, exactly the
    model's size); its conversions are in :attr:`Samples.notes` as ``"<file>: <note>"``.
    """
    if not paths:
        raise LabError("no image file given")
    reads = [read_image(p, info.input_shape) for p in paths]
    return Samples(x=np.stack([r.x for r in reads]), y=None, source={"files": [str(p) for p in paths]},
                   names=[str(p) for p in paths], notes=[f"{r.name}: {n}" for r in reads for n in r.notes])  # fmt: skip


def to_tensor(x: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 [N, C, H, W] -> float32 [N, C, H, W] in [0, 1] on ``device``."""
    return to_float(x, device)
