"""IDX reader: parse, encode, verify (gz and raw, recompressed copies, tampering)."""

from __future__ import annotations

import gzip
import hashlib
import struct
from pathlib import Path

import numpy as np
import pytest
from lab_data_fakes import idx_content_table, tiny_arrays, write_idx_set

from lab.core.errors import DataError
from lab.data.checksums import ChecksumError
from lab.data.idx import encode_idx, parse_idx_images, parse_idx_labels, read_idx_files


def test_encode_parse_round_trip() -> None:
    a = tiny_arrays(4, 2, size=5)
    images = encode_idx(a.train_x)
    assert images[:4] == b"\x00\x00\x08\x03" and struct.unpack(">3I", images[4:16]) == (4, 5, 5)
    np.testing.assert_array_equal(parse_idx_images(images, what="x"), a.train_x)
    labels = encode_idx(a.train_y)
    assert labels[:8] == b"\x00\x00\x08\x01" + struct.pack(">I", 4)
    y = parse_idx_labels(labels, what="y")
    assert y.dtype == np.int64
    np.testing.assert_array_equal(y, a.train_y)


@pytest.mark.parametrize("gz", [True, False])
def test_read_idx_files(tmp_path: Path, gz: bool) -> None:
    a = tiny_arrays()
    paths = write_idx_set(tmp_path, a, gz=gz)
    arrays, records = read_idx_files(paths, idx_content_table(a), dataset="toy")
    for got, want in zip(arrays, a, strict=True):
        np.testing.assert_array_equal(got, want)
        assert got.dtype == want.dtype
    assert arrays.train_x.shape == (12, 1, 28, 28)
    assert [r["path"] for r in records] == [str(p) for p in paths.values()]
    assert all(("md5" in r and "content_sha256" in r) == gz for r in records)


def test_recompressed_copy_verifies_by_content(tmp_path: Path) -> None:
    """Debian recompressed its .gz files: same content, other gz bytes, same verdict."""
    a = tiny_arrays()
    fast = write_idx_set(tmp_path / "fast", a, level=1)
    best = write_idx_set(tmp_path / "best", a, level=9)
    assert fast["train-images"].read_bytes() != best["train-images"].read_bytes()
    table = idx_content_table(a)
    r1 = read_idx_files(fast, table, dataset="toy")[1]
    r2 = read_idx_files(best, table, dataset="toy")[1]
    assert [r["content_sha256"] for r in r1] == [r["content_sha256"] for r in r2]


def test_published_gz_md5_is_accepted(tmp_path: Path) -> None:
    a = tiny_arrays()
    paths = write_idx_set(tmp_path, a)
    md5 = {r: hashlib.md5(p.read_bytes()).hexdigest() for r, p in paths.items()}
    wrong = dict.fromkeys(md5, "0" * 64)
    arrays, _ = read_idx_files(paths, wrong, dataset="toy", gz_md5=md5)
    np.testing.assert_array_equal(arrays.test_y, a.test_y)


def test_tampered_file_names_file_and_checksums(tmp_path: Path) -> None:
    a = tiny_arrays()
    paths = write_idx_set(tmp_path, a)
    table = idx_content_table(a)
    content = bytearray(gzip.decompress(paths["t10k-labels"].read_bytes()))
    content[-1] ^= 1
    paths["t10k-labels"].write_bytes(gzip.compress(bytes(content)))
    with pytest.raises(ChecksumError) as err:
        read_idx_files(paths, table, dataset="toy")
    msg = str(err.value)
    assert str(paths["t10k-labels"]) in msg
    assert table["t10k-labels"] in msg and hashlib.sha256(bytes(content)).hexdigest() in msg


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"\x00\x00\x08\x03" + struct.pack(">3I", 2, 2, 2) + b"\x00" * 7, "truncated or corrupt"),
        (b"\x00\x00\x09\x03" + struct.pack(">3I", 1, 1, 1) + b"\x00", "IDX type"),
        (b"PK\x03\x04", "not an IDX"),
        (encode_idx(np.zeros(3, np.uint8)), "not an IDX image file"),
    ],
)
def test_malformed_idx(data: bytes, match: str) -> None:
    with pytest.raises(DataError, match=match):
        parse_idx_images(data, what="bad.idx")


def test_count_mismatch_between_images_and_labels(tmp_path: Path) -> None:
    a = tiny_arrays()
    b = a._replace(train_y=a.train_y[:-1])
    paths = write_idx_set(tmp_path, b)
    with pytest.raises(DataError, match="12 images but"):
        read_idx_files(paths, idx_content_table(b), dataset="toy")


def test_corrupt_gzip(tmp_path: Path) -> None:
    a = tiny_arrays()
    paths = write_idx_set(tmp_path, a)
    paths["train-images"].write_bytes(paths["train-images"].read_bytes()[:100])
    with pytest.raises(DataError, match="not a valid gzip file"):
        read_idx_files(paths, idx_content_table(a), dataset="toy")
