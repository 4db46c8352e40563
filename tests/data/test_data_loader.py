"""load_dataset: names, folders, source order, cache verification and rebuild, downloads."""

from __future__ import annotations

import hashlib
import json
import logging
import zipfile
from pathlib import Path

import numpy as np
import pytest
from lab_data_fakes import FakeDataset, tiny_arrays, write_idx_set

from lab.core.errors import DataError
from lab.data import DATASET_NAMES, Dataset, cache_dir, dataset_info, fingerprint, load_dataset
from lab.data.cache import cache_path
from lab.data.checksums import ChecksumError
from lab.data.download import fetch
from lab.data.idx import IDX_ROLES
from lab.data.known import IdxSpec

# ---------------------------------------------------------------- names, folders, Dataset


def test_unknown_name_lists_valid_ones() -> None:
    with pytest.raises(
        DataError, match=r"unknown dataset 'svhn'; valid names are mnist, fashion-mnist, cifar10"
    ):
        load_dataset("svhn")


def test_cache_dir_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LAB_CACHE_DIR", str(tmp_path / "a"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert cache_dir() == tmp_path / "a"
    monkeypatch.delenv("LAB_CACHE_DIR")
    assert cache_dir() == tmp_path / "x" / "lab"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "lab"
    assert cache_path("mnist") == cache_dir() / "datasets" / "mnist.npz"


def test_missing_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DataError, match="data folder .*nope does not exist"):
        load_dataset("mnist", tmp_path / "nope", download=False)
    monkeypatch.setenv("LAB_DATA_DIR", str(tmp_path / "gone"))
    with pytest.raises(DataError, match="LAB_DATA_DIR .*gone does not exist"):
        load_dataset("mnist", download=False)


def test_fingerprint_definition_and_stability() -> None:
    a = tiny_arrays(3, 2, size=2)
    h = hashlib.sha256()
    for part in (
        a.train_x.tobytes(),
        a.train_y.astype(np.uint8).tobytes(),
        a.test_x.tobytes(),
        a.test_y.astype(np.uint8).tobytes(),
    ):
        h.update(part)
    assert fingerprint(*a) == h.hexdigest()
    # memory layout does not matter, content does
    fortran = np.asfortranarray(a.train_x)
    assert fingerprint(fortran, a.train_y, a.test_x, a.test_y) == h.hexdigest()
    changed = a.train_x.copy()
    changed[0, 0, 0, 0] ^= 1
    assert fingerprint(changed, a.train_y, a.test_x, a.test_y) != h.hexdigest()
    zeros = np.zeros((1, 1, 1, 1), np.uint8)
    label = np.zeros(1, np.int64)
    assert fingerprint(zeros, label, zeros, label) == hashlib.sha256(b"\0" * 4).hexdigest()


def test_dataset_properties_and_validation() -> None:
    a = tiny_arrays(6, 2, size=4)
    ds = Dataset("toy", *a, tuple("0123456789"), "test", fingerprint(*a))
    assert ds.input_shape == (1, 4, 4) and ds.num_classes == 10
    assert ds.mean == pytest.approx((float((a.train_x / 255.0).mean()),))
    assert ds.std == pytest.approx((float((a.train_x / 255.0).std()),))
    assert "toy" in repr(ds) and len(repr(ds)) < 300
    with pytest.raises(DataError, match="labels range over"):
        Dataset("toy", *a, ("a", "b"), "test", "")
    with pytest.raises(DataError, match="must be uint8"):
        Dataset("toy", a.train_x.astype(np.float32), *a[1:], tuple("0123456789"), "test", "")


# ---------------------------------------------------------------- sources and the cache


def test_system_then_cache(fake_fmnist: FakeDataset) -> None:
    first = load_dataset("fashion-mnist", download=False)
    assert first.source == f"system {fake_fmnist.system_dir}"
    assert first.fingerprint == fake_fmnist.fingerprint
    assert [f["path"] for f in first.files] == [
        str(fake_fmnist.system_dir / f"{b}.gz") for b in IDX_ROLES.values()
    ]
    second = load_dataset("fashion-mnist", download=False)
    assert second.source == f"cache {cache_path('fashion-mnist')}"
    assert second.fingerprint == fake_fmnist.fingerprint
    np.testing.assert_array_equal(second.train_x, fake_fmnist.arrays.train_x)
    assert (
        second.class_names
        == first.class_names
        == (
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        )
    )


def test_gz_and_raw_give_the_same_fingerprint(tmp_path: Path, fake_fmnist: FakeDataset) -> None:
    write_idx_set(tmp_path / "raw-user", fake_fmnist.arrays, gz=False)
    ds = load_dataset("fashion-mnist", tmp_path / "raw-user", download=False)
    assert ds.source == f"user folder {tmp_path / 'raw-user'}"
    assert ds.fingerprint == fake_fmnist.fingerprint


def _flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def _resave_with_one_pixel_changed(path: Path) -> None:
    with np.load(path) as npz:
        parts = {k: npz[k] for k in npz.files}
    parts["train_x"][0, 0, 0, 0] ^= 1
    with open(path, "wb") as fh:
        np.savez(fh, **parts)


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda p: _flip_byte(p, p.stat().st_size // 2), id="flipped-byte"),
        pytest.param(
            lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 3]), id="truncated"
        ),
        pytest.param(_resave_with_one_pixel_changed, id="valid-npz-wrong-content"),
        pytest.param(lambda p: p.write_bytes(b"garbage"), id="garbage"),
    ],
)
def test_tampered_cache_warns_and_is_rebuilt(
    fake_fmnist: FakeDataset, caplog: pytest.LogCaptureFixture, tamper
) -> None:  # type: ignore[no-untyped-def]
    load_dataset("fashion-mnist", download=False)
    path = cache_path("fashion-mnist")
    tamper(path)
    with caplog.at_level(logging.WARNING, logger="lab.data"):
        ds = load_dataset("fashion-mnist", download=False)
    assert ds.source.startswith("system ") and ds.fingerprint == fake_fmnist.fingerprint
    assert any(
        "failed verification" in r.getMessage() and str(path) in r.getMessage()
        for r in caplog.records
    )
    again = load_dataset("fashion-mnist", download=False)  # the rebuilt cache verifies
    assert again.source.startswith("cache ")


def test_cache_is_an_npz_without_pickles(fake_fmnist: FakeDataset) -> None:
    load_dataset("fashion-mnist", download=False)
    with np.load(cache_path("fashion-mnist"), allow_pickle=False) as npz:
        assert npz["train_x"].dtype == np.uint8
        assert json.loads(str(npz["meta"]))["fingerprint"] == fake_fmnist.fingerprint
    assert zipfile.is_zipfile(cache_path("fashion-mnist"))
    assert not list(cache_path("fashion-mnist").parent.glob(".*.tmp"))


def test_user_folder_with_tampered_file(tmp_path: Path, fake_fmnist: FakeDataset) -> None:
    user = tmp_path / "user"
    paths = write_idx_set(user / "fashion-mnist", fake_fmnist.arrays)
    bad = fake_fmnist.arrays.test_x.copy()
    bad[0, 0, 0, 0] ^= 1
    write_idx_set(tmp_path / "tmp", fake_fmnist.arrays._replace(test_x=bad))
    paths["t10k-images"].write_bytes((tmp_path / "tmp" / "t10k-images-idx3-ubyte.gz").read_bytes())
    with pytest.raises(ChecksumError) as err:
        load_dataset("fashion-mnist", user, download=False)
    msg = str(err.value)
    assert (
        str(paths["t10k-images"]) in msg
        and fake_fmnist.table["t10k-images"] in msg
        and err.value.actual in msg
    )


def test_user_folder_with_missing_files(tmp_path: Path, fake_fmnist: FakeDataset) -> None:
    paths = write_idx_set(tmp_path / "user", fake_fmnist.arrays)
    paths["train-labels"].unlink()
    with pytest.raises(DataError, match="lacks train-labels-idx1-ubyte"):
        load_dataset("fashion-mnist", tmp_path / "user", download=False)


def test_user_folder_without_files_falls_through(tmp_path: Path, fake_fmnist: FakeDataset) -> None:
    (tmp_path / "empty").mkdir()
    ds = load_dataset("fashion-mnist", tmp_path / "empty", download=False)
    assert ds.source.startswith("system ")


def test_user_folder_wins_over_cache(
    tmp_path: Path, fake_fmnist: FakeDataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_dataset("fashion-mnist", download=False)  # fills the cache
    write_idx_set(
        tmp_path / "user" / "FashionMNIST" / "raw", fake_fmnist.arrays
    )  # torchvision layout
    monkeypatch.setenv("LAB_DATA_DIR", str(tmp_path / "user"))
    ds = load_dataset("fashion-mnist", download=False)
    assert ds.source == f"user folder {tmp_path / 'user' / 'FashionMNIST' / 'raw'}"


def test_nothing_found_is_one_error_listing_sources(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr("lab.data.loader.SYSTEM_DIRS", {})
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError) as err:
        load_dataset("fashion-mnist", tmp_path / "empty", download=False)
    msg = str(err.value)
    assert msg.startswith("could not load fashion-mnist, tried: user folder")
    assert "fashion-mnist.npz (absent)" in msg
    assert "download=False" in msg and "dataset-fashion-mnist" in msg
    assert msg.count(". ") == 0 and msg.endswith(".")


# ---------------------------------------------------------------- downloads (file:// URLs)


def test_fetch_verifies_before_moving(tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(b"payload")
    md5 = hashlib.md5(b"payload").hexdigest()
    dest = tmp_path / "dl" / "file.bin"
    assert fetch(src.as_uri(), dest, md5=md5) == dest and dest.read_bytes() == b"payload"
    other = tmp_path / "dl" / "other.bin"
    with pytest.raises(ChecksumError, match="expected 0+"):
        fetch(src.as_uri(), other, md5="0" * 32)
    assert sorted(p.name for p in other.parent.iterdir()) == ["file.bin"]  # nothing half-written
    with pytest.raises(OSError):
        fetch((tmp_path / "missing").as_uri(), other, md5=md5)


def test_download_source_end_to_end(
    tmp_path: Path, fake_fmnist: FakeDataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    mirror = tmp_path / "mirror"
    paths = write_idx_set(mirror, fake_fmnist.arrays)
    gz_md5 = {r: hashlib.md5(p.read_bytes()).hexdigest() for r, p in paths.items()}
    spec = IdxSpec(
        content_sha256=fake_fmnist.table,
        gz_md5=gz_md5,
        urls=("file:///nonexistent/", mirror.as_uri() + "/"),
    )
    monkeypatch.setattr("lab.data.remote.IDX_SPECS", {"fashion-mnist": spec})
    monkeypatch.setattr("lab.data.loader.SYSTEM_DIRS", {})
    ds = load_dataset("fashion-mnist", download=True)
    assert ds.source == f"download {mirror.as_uri()}/" and ds.fingerprint == fake_fmnist.fingerprint
    raw = cache_dir() / "datasets" / "raw" / "fashion-mnist"
    assert sorted(p.name for p in raw.iterdir()) == sorted(f"{b}.gz" for b in IDX_ROLES.values())
    cache_path("fashion-mnist").unlink()  # verified downloads are reused without the network
    monkeypatch.setattr(
        "lab.data.remote.IDX_SPECS", {"fashion-mnist": IdxSpec(fake_fmnist.table, gz_md5, ())}
    )
    assert load_dataset("fashion-mnist", download=False).source == f"cache {raw}"


def test_dataset_info_is_json(fake_fmnist: FakeDataset) -> None:
    info = dataset_info("fashion-mnist")
    text = json.dumps(info)
    assert info["fingerprint"] == fake_fmnist.fingerprint and info["train_size"] == 12
    assert info["input_shape"] == [1, 28, 28] and info["cached"] is True
    assert all({"path", "bytes", "sha256"} <= set(f) for f in info["files"])
    assert "cache_path" in text


def test_names_are_listed() -> None:
    assert DATASET_NAMES == ("mnist", "fashion-mnist", "cifar10")
