"""CIFAR-10 python batches: reading with a custom md5 table, mismatches, safe tar extraction."""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
from lab_data_fakes import write_cifar_folder

from lab.core.errors import DataError
from lab.data import load_dataset
from lab.data.checksums import ChecksumError
from lab.data.cifar import read_cifar10_folder
from lab.data.download import extract_members
from lab.data.known import CIFAR10_CLASSES


def test_read_batches_with_own_table(tmp_path: Path) -> None:
    table, want = write_cifar_folder(tmp_path / "cifar-10-batches-py", n=3)
    arrays, names, records = read_cifar10_folder(tmp_path / "cifar-10-batches-py", table)
    assert arrays.train_x.shape == (15, 3, 32, 32) and arrays.test_x.shape == (3, 3, 32, 32)
    assert arrays.train_x.dtype == np.uint8 and arrays.train_y.dtype == np.int64
    for got, exp in zip(arrays, want, strict=True):
        np.testing.assert_array_equal(got, exp)
    # the 3072 values are the red plane, then green, then blue, each row-major
    first = pickle.loads((tmp_path / "cifar-10-batches-py" / "data_batch_1").read_bytes())[b"data"][
        0
    ]
    np.testing.assert_array_equal(arrays.train_x[0, 1].reshape(-1), first[1024:2048])
    assert names == tuple(f"class{i}" for i in range(10))
    assert len(records) == 7 and all("md5" in r for r in records)


def test_without_meta_uses_standard_names(tmp_path: Path) -> None:
    table, _ = write_cifar_folder(tmp_path, meta=False)
    _, names, records = read_cifar10_folder(tmp_path, table)
    assert names == CIFAR10_CLASSES and len(records) == 6


def test_real_table_rejects_other_files(tmp_path: Path) -> None:
    write_cifar_folder(tmp_path)
    actual = hashlib.md5((tmp_path / "data_batch_1").read_bytes()).hexdigest()
    with pytest.raises(ChecksumError) as err:
        read_cifar10_folder(tmp_path)  # default: the published md5s
    msg = str(err.value)
    assert str(tmp_path / "data_batch_1") in msg
    assert "c99cafc152244af753f735de768cd75f" in msg and actual in msg


def test_user_folder_with_wrong_files_is_an_error(tmp_path: Path) -> None:
    write_cifar_folder(tmp_path / "data" / "cifar-10-batches-py")
    with pytest.raises(DataError, match="data_batch_1 is not the known CIFAR-10 data_batch_1 file"):
        load_dataset("cifar10", tmp_path / "data", download=False)


def test_incomplete_folder(tmp_path: Path) -> None:
    table, _ = write_cifar_folder(tmp_path)
    (tmp_path / "data_batch_3").unlink()
    with pytest.raises(DataError, match="lacks the CIFAR-10 file"):
        read_cifar10_folder(tmp_path, table)


def test_batch_with_forbidden_global(tmp_path: Path) -> None:
    table, _ = write_cifar_folder(tmp_path)
    evil = pickle.dumps({b"data": os.system, b"labels": []}, protocol=4)
    (tmp_path / "data_batch_2").write_bytes(evil)
    table["data_batch_2"] = hashlib.md5(evil).hexdigest()
    with pytest.raises(DataError, match="refuses to unpickle"):
        read_cifar10_folder(tmp_path, table)


def test_tar_extraction_writes_only_expected_members(tmp_path: Path) -> None:
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:

        def add(
            name: str, data: bytes = b"x", kind: bytes = tarfile.REGTYPE, link: str = ""
        ) -> None:
            info = tarfile.TarInfo(name)
            info.type, info.linkname, info.size = (
                kind,
                link,
                len(data) if kind == tarfile.REGTYPE else 0,
            )
            tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)

        add("cifar-10-batches-py/data_batch_1", b"batch one")
        add("cifar-10-batches-py/../../evil", b"evil")
        add("/tmp/absolute-evil", b"evil")
        add("cifar-10-batches-py/test_batch", kind=tarfile.SYMTYPE, link="/etc/passwd")
        add("cifar-10-batches-py/readme.html", b"<html>")
    out = tmp_path / "out"
    written = extract_members(archive, "cifar-10-batches-py", ["data_batch_1", "test_batch"], out)
    assert written == [out / "data_batch_1"]
    assert sorted(p.name for p in out.iterdir()) == ["data_batch_1"]
    assert (out / "data_batch_1").read_bytes() == b"batch one"
    assert not (tmp_path / "evil").exists()
