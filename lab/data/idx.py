"""The IDX format of MNIST and Fashion-MNIST: parse, encode, and read a verified set of four files.

An IDX file is a 4-byte big-endian magic number ``0x000008DD`` (0x08: unsigned byte
data, DD: the number of dimensions), one big-endian uint32 per dimension, then the
uint8 payload in C order. Images are ``0x00000803`` (N, H, W), labels ``0x00000801`` (N).
The files may be gzip-compressed; checksums are taken over the decompressed content, so
a recompressed copy (Debian's) verifies against the same numbers as the original.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from lab.core.errors import DataError
from lab.data.checksums import file_record, open_maybe_gzip, read_bytes, verify_record
from lab.data.dataset import Arrays

IDX_IMAGES_MAGIC = 0x00000803
IDX_LABELS_MAGIC = 0x00000801
MAX_IDX_BYTES = 256 << 20  # MNIST's largest file is 47 MB

#: The four files of an IDX dataset, by role, and their standard base names.
IDX_ROLES: Mapping[str, str] = {
    "train-images": "train-images-idx3-ubyte",
    "train-labels": "train-labels-idx1-ubyte",
    "t10k-images": "t10k-images-idx3-ubyte",
    "t10k-labels": "t10k-labels-idx1-ubyte",
}


def parse_idx(data: bytes, *, what: str) -> np.ndarray:
    """Parse IDX bytes into a uint8 array of the shape the header declares."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DataError(
            f"{what} is not an IDX file (bad magic number); replace it with the original file."
        )
    if data[2] != 0x08:
        raise DataError(f"{what} holds IDX type 0x{data[2]:02x}, expected unsigned bytes (0x08).")
    ndim = data[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise DataError(f"{what} has a truncated IDX header; replace it with the original file.")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    expected = header + int(np.prod(dims, dtype=np.int64))
    if len(data) != expected:
        raise DataError(
            f"{what} is {len(data)} bytes but its IDX header {tuple(dims)} implies {expected}; "
            "it is truncated or corrupt, so replace it with the original file."
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims).copy()


def parse_idx_images(data: bytes, *, what: str) -> np.ndarray:
    """Parse an IDX image file (magic ``0x00000803``) into uint8 [N, 1, H, W]."""
    arr = parse_idx(data, what=what)
    if arr.ndim != 3:
        raise DataError(
            f"{what} is not an IDX image file "
            f"(magic 0x{0x800 + arr.ndim:08x}, expected 0x00000803)."
        )
    return arr[:, None, :, :]


def parse_idx_labels(data: bytes, *, what: str) -> np.ndarray:
    """Parse an IDX label file (magic ``0x00000801``) into int64 [N]."""
    arr = parse_idx(data, what=what)
    if arr.ndim != 1:
        raise DataError(
            f"{what} is not an IDX label file "
            f"(magic 0x{0x800 + arr.ndim:08x}, expected 0x00000801)."
        )
    return arr.astype(np.int64)


def encode_idx(array: np.ndarray) -> bytes:
    """Encode a uint8 array as IDX bytes: labels [N], images [N, H, W] (or [N, 1, H, W])."""
    a = np.asarray(array)
    if a.dtype != np.uint8:
        if a.size and (a.min() < 0 or a.max() > 255):
            raise ValueError("IDX payload must fit in uint8")
        a = a.astype(np.uint8)
    if a.ndim == 4 and a.shape[1] == 1:
        a = a[:, 0]
    header = struct.pack(">BBBB", 0, 0, 0x08, a.ndim) + struct.pack(f">{a.ndim}I", *a.shape)
    return header + np.ascontiguousarray(a).tobytes()


def read_idx_files(
    paths: Mapping[str, Path],
    content_sha256: Mapping[str, str],
    *,
    dataset: str,
    gz_md5: Mapping[str, str] | None = None,
) -> tuple[Arrays, list[dict[str, Any]]]:
    """Read the four IDX files ``paths[role]`` (roles: :data:`IDX_ROLES`), verifying each first.

    ``content_sha256[role]`` is the sha256 of the file's decompressed content; a gzip file
    whose own md5 is ``gz_md5[role]`` (the published one) is accepted too. Nothing is
    parsed before its file verified. Returns the arrays and one :func:`file_record` per file.
    """
    records: list[dict[str, Any]] = []
    parsed: dict[str, np.ndarray] = {}
    for role in IDX_ROLES:
        path = paths[role]
        data = read_bytes(path, limit=MAX_IDX_BYTES)
        content, was_gz = open_maybe_gzip(data, limit=MAX_IDX_BYTES, what=str(path))
        rec = file_record(str(path), data, content if was_gz else None, md5=was_gz)
        md5s = [gz_md5[role]] if gz_md5 and was_gz else []
        verify_record(
            rec, what=f"{dataset} {role}", md5=md5s, content_sha256=[content_sha256[role]]
        )
        records.append(rec)
        parse = parse_idx_images if role.endswith("images") else parse_idx_labels
        parsed[role] = parse(content, what=str(path))
    arrays = Arrays(
        parsed["train-images"], parsed["train-labels"], parsed["t10k-images"], parsed["t10k-labels"]
    )
    pairs = (("train", arrays.train_x, arrays.train_y), ("t10k", arrays.test_x, arrays.test_y))
    for split, x, y in pairs:
        if len(x) != len(y):
            raise DataError(
                f"{paths[split + '-images']} holds {len(x)} images but "
                f"{paths[split + '-labels']} holds {len(y)} labels; use files from one release."
            )
    return arrays, records
