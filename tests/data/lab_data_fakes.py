"""Writers for tiny dataset files in the real formats (IDX, MNIST pickle, CIFAR batches, PNG)."""

from __future__ import annotations

import gzip
import hashlib
import io
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from lab.data.dataset import Arrays
from lab.data.idx import IDX_ROLES, encode_idx


def tiny_arrays(n_train: int = 12, n_test: int = 5, *, seed: int = 0, size: int = 28) -> Arrays:
    """Random uint8 images [N, 1, size, size] and labels 0..9."""
    rng = np.random.default_rng(seed)
    return Arrays(
        rng.integers(0, 256, (n_train, 1, size, size), dtype=np.uint8),
        rng.integers(0, 10, n_train).astype(np.int64),
        rng.integers(0, 256, (n_test, 1, size, size), dtype=np.uint8),
        rng.integers(0, 10, n_test).astype(np.int64),
    )


def _by_role(arrays: Arrays) -> dict[str, np.ndarray]:
    return {
        "train-images": arrays.train_x,
        "train-labels": arrays.train_y,
        "t10k-images": arrays.test_x,
        "t10k-labels": arrays.test_y,
    }


def idx_content_table(arrays: Arrays) -> dict[str, str]:
    """sha256 of each role's decompressed IDX content."""
    return {r: hashlib.sha256(encode_idx(a)).hexdigest() for r, a in _by_role(arrays).items()}


def write_idx_set(
    folder: Path, arrays: Arrays, *, gz: bool = True, level: int = 9
) -> dict[str, Path]:
    """Write the four IDX files (gzip at ``level`` or raw) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for role, arr in _by_role(arrays).items():
        data = encode_idx(arr)
        path = folder / (IDX_ROLES[role] + (".gz" if gz else ""))
        path.write_bytes(gzip.compress(data, compresslevel=level, mtime=0) if gz else data)
        paths[role] = path
    return paths


def mnist_pickle_bytes(arrays: Arrays, *, n_valid: int = 3, compress: bool = True) -> bytes:
    """The deeplearning.net layout: ((train), (valid), (test)), float32 [N, 784] of k/256."""

    def flat(x: np.ndarray) -> np.ndarray:
        return (x.reshape(len(x), 784).astype(np.float32) / np.float32(256.0)).astype(np.float32)

    n_train = len(arrays.train_x) - n_valid
    obj = (
        (flat(arrays.train_x[:n_train]), arrays.train_y[:n_train]),
        (flat(arrays.train_x[n_train:]), arrays.train_y[n_train:]),
        (flat(arrays.test_x), arrays.test_y),
    )
    raw = pickle.dumps(obj, protocol=4)
    return gzip.compress(raw, mtime=0) if compress else raw


def cifar_batch(x: np.ndarray, y: np.ndarray, label: bytes) -> bytes:
    """One CIFAR-10 python batch: a dict with bytes keys, data uint8 [n, 3072]."""
    return pickle.dumps(
        {
            b"batch_label": label,
            b"labels": [int(v) for v in y],
            b"data": x.reshape(len(x), 3072),
            b"filenames": [f"img_{i}.png".encode() for i in range(len(x))],
        },
        protocol=4,
    )


def write_cifar_folder(
    folder: Path, *, n: int = 2, seed: int = 0, meta: bool = True
) -> tuple[dict[str, str], Arrays]:
    """Write tiny ``data_batch_1..5``, ``test_batch`` and ``batches.meta``; return md5s, arrays."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    xs, ys = [], []
    for i in range(6):
        x = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
        y = rng.integers(0, 10, n).astype(np.int64)
        name = f"data_batch_{i + 1}" if i < 5 else "test_batch"
        (folder / name).write_bytes(cifar_batch(x, y, name.encode()))
        xs.append(x)
        ys.append(y)
    if meta:
        names = [f"class{i}".encode() for i in range(10)]
        (folder / "batches.meta").write_bytes(
            pickle.dumps(
                {b"label_names": names, b"num_cases_per_batch": n, b"num_vis": 3072}, protocol=4
            )
        )
    table = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in folder.iterdir()}
    return table, Arrays(np.concatenate(xs[:5]), np.concatenate(ys[:5]), xs[5], ys[5])


def image_bytes(array: np.ndarray, fmt: str = "PNG") -> bytes:
    """Encode uint8 [H, W] (gray) or [H, W, 3] (RGB) as PNG or JPEG."""
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt)
    return buf.getvalue()


@dataclass
class FakeDataset:
    """A tiny dataset the loader treats as fashion-mnist, installed as a "system" copy."""

    arrays: Arrays
    fingerprint: str
    system_dir: Path
    table: dict[str, str]
