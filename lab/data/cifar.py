"""CIFAR-10 "python version" batches: ``data_batch_1..5``, ``test_batch``, ``batches.meta``.

Each batch is a pickled dict with bytes keys: ``b"data"`` uint8 [n, 3072] (1024 red, then
green, then blue values, rows top to bottom), ``b"labels"`` a list of n ints,
``b"batch_label"`` and ``b"filenames"``. ``batches.meta`` holds ``b"label_names"``. Every
file is md5-verified before it is unpickled with the restricted unpickler.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from lab.core.errors import DataError
from lab.data.checksums import file_record, read_bytes, verify_record
from lab.data.dataset import Arrays
from lab.data.known import CIFAR10_CLASSES, CIFAR10_MD5
from lab.data.safe_pickle import safe_loads

TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
META = "batches.meta"
MAX_BATCH_BYTES = 64 << 20  # a real batch is 31 MB


def _load_verified(path: Path, checksums: Mapping[str, str]) -> tuple[Any, dict[str, Any]]:
    data = read_bytes(path, limit=MAX_BATCH_BYTES)
    rec = file_record(str(path), data, md5=True)
    verify_record(rec, what=f"CIFAR-10 {path.name}", md5=[checksums[path.name]])
    return safe_loads(data, what=str(path), encoding="bytes"), rec


def _parse_batch(obj: Any, *, what: str) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(obj, dict) or b"data" not in obj or b"labels" not in obj:
        raise DataError(f"{what} is not a CIFAR-10 batch (no b'data' and b'labels' entries).")
    data, labels = obj[b"data"], obj[b"labels"]
    if (
        not isinstance(data, np.ndarray)
        or data.dtype != np.uint8
        or data.ndim != 2
        or data.shape[1] != 3072
    ):
        raise DataError(f"{what} holds data that is not uint8 [n, 3072].")
    y = np.asarray(labels)
    if y.ndim != 1 or len(y) != len(data) or (y.size and y.dtype.kind not in "iu"):
        raise DataError(f"{what} holds {len(y)} labels for {len(data)} images.")
    return data.reshape(-1, 3, 32, 32), y.astype(np.int64)


def _parse_meta(obj: Any, *, what: str) -> tuple[str, ...]:
    names = obj.get(b"label_names") if isinstance(obj, dict) else None
    if not isinstance(names, list) or not all(isinstance(n, bytes | str) for n in names):
        raise DataError(f"{what} has no list of b'label_names'.")
    return tuple(n.decode("utf-8") if isinstance(n, bytes) else n for n in names)


def read_cifar10_folder(
    folder: Path, checksums: Mapping[str, str] = CIFAR10_MD5
) -> tuple[Arrays, tuple[str, ...], list[dict[str, Any]]]:
    """Read a ``cifar-10-batches-py`` folder into uint8 [N, 3, 32, 32] arrays.

    ``checksums`` maps each file name to its md5 (default: the published ones). The six
    batches are required; without ``batches.meta`` the standard class names are used.
    Returns the arrays, the class names and one file record per file read.
    """
    missing = [n for n in (*TRAIN_BATCHES, TEST_BATCH) if not (folder / n).is_file()]
    if missing:
        raise DataError(
            f"{folder} lacks the CIFAR-10 file(s) {', '.join(missing)}; "
            "use a complete cifar-10-batches-py folder."
        )
    records: list[dict[str, Any]] = []
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    for name in (*TRAIN_BATCHES, TEST_BATCH):
        obj, rec = _load_verified(folder / name, checksums)
        x, y = _parse_batch(obj, what=str(folder / name))
        records.append(rec)
        xs.append(x)
        ys.append(y)
    class_names: tuple[str, ...] = CIFAR10_CLASSES
    if (folder / META).is_file():
        obj, rec = _load_verified(folder / META, checksums)
        class_names = _parse_meta(obj, what=str(folder / META))
        records.append(rec)
    arrays = Arrays(np.concatenate(xs[:5]), np.concatenate(ys[:5]), xs[5], ys[5])
    return arrays, class_names, records
