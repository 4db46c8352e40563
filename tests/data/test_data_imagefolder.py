"""``imagefolder:<path>``: layouts, channels, sizes, bad files, and the cache key."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from lab_data_fakes import image_bytes

from lab.core.errors import DataError
from lab.data import load_dataset
from lab.data.imagefolder import read_imagefolder


def _gray(value: int, size: tuple[int, int] = (6, 8)) -> np.ndarray:
    return np.full(size, value, np.uint8)


def _folder(root: Path, per_class: int = 5, classes: tuple[str, ...] = ("dog", "cat")) -> Path:
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            (root / name / f"{i:03d}.png").write_bytes(image_bytes(_gray(10 * c + i)))
    return root


def test_grayscale_folder_split_every_fifth(tmp_path: Path) -> None:
    root = _folder(tmp_path / "imgs", per_class=10)
    arrays, names, records = read_imagefolder(root)
    assert names == ("cat", "dog")  # sorted folder names
    assert arrays.train_x.shape == (16, 1, 6, 8) and arrays.test_x.shape == (4, 1, 6, 8)
    # every 5th file of each class (sorted) goes to test: files 004 and 009 of cat, then dog
    assert arrays.test_x[:, 0, 0, 0].tolist() == [14, 19, 4, 9]
    assert arrays.test_y.tolist() == [0, 0, 1, 1] and arrays.test_y.dtype == np.int64
    assert records[0]["files"] == 20 and len(records[0]["sha256"]) == 64


def test_mixed_modes_give_rgb(tmp_path: Path) -> None:
    root = _folder(tmp_path / "imgs")
    rgb = np.zeros((6, 8, 3), np.uint8)
    rgb[..., 0] = 200
    (root / "cat" / "zzz.png").write_bytes(image_bytes(rgb))
    arrays, _, _ = read_imagefolder(root)
    assert arrays.train_x.shape[1] == 3
    gray = arrays.train_x[0]  # cat/000.png, gray value 10 replicated to 3 channels
    assert (gray == 10).all()
    red = np.concatenate([arrays.train_x, arrays.test_x])[:, 0].max()
    assert red == 200


def test_train_test_layout_and_jpeg(tmp_path: Path) -> None:
    for split, n in (("train", 3), ("test", 2)):
        for name in ("a", "b"):
            d = tmp_path / "imgs" / split / name
            d.mkdir(parents=True)
            for i in range(n):
                (d / f"{i}.jpg").write_bytes(image_bytes(_gray(128), fmt="JPEG"))
    arrays, names, _ = read_imagefolder(tmp_path / "imgs")
    assert names == ("a", "b")
    assert len(arrays.train_x) == 6 and len(arrays.test_x) == 4
    assert arrays.train_y.tolist() == [0, 0, 0, 1, 1, 1]
    assert abs(int(arrays.train_x.mean()) - 128) <= 2


def test_wrong_size_image_is_named(tmp_path: Path) -> None:
    root = _folder(tmp_path / "imgs")
    bad = root / "dog" / "002.png"
    bad.write_bytes(image_bytes(_gray(0, (7, 8))))
    with pytest.raises(DataError, match=r"002\.png is 8x7 pixels but the images must all be 8x6"):
        read_imagefolder(root)


def test_corrupt_image_is_named(tmp_path: Path) -> None:
    root = _folder(tmp_path / "imgs")
    bad = root / "cat" / "001.png"
    bad.write_bytes(bad.read_bytes()[:40])
    with pytest.raises(DataError, match=r"cat/001\.png' (ends inside its PNG header|has a damaged PNG header|is damaged and cannot be decoded)"):
        read_imagefolder(root)


def test_non_image_file_is_named(tmp_path: Path) -> None:
    root = _folder(tmp_path / "imgs")
    (root / "cat" / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match=r"notes\.txt is not a PNG or JPEG image"):
        read_imagefolder(root)


def test_disguised_format_is_refused(tmp_path: Path) -> None:
    root = _folder(tmp_path / "imgs")
    (root / "cat" / "gif.png").write_bytes(image_bytes(_gray(1), fmt="GIF"))
    with pytest.raises(DataError, match="is a GIF image; expected a PNG or JPEG"):
        read_imagefolder(root)


def test_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no class subfolders"):
        read_imagefolder(tmp_path / "empty")


def test_load_caches_and_invalidates_on_edit(tmp_path: Path) -> None:
    root = _folder(tmp_path / "imgs")
    first = load_dataset(f"imagefolder:{root}")
    assert first.name == f"imagefolder:{root.resolve()}" and first.source.startswith("user folder")
    second = load_dataset(f"imagefolder:{root}")
    assert second.source.startswith("cache ") and second.fingerprint == first.fingerprint
    edited = root / "dog" / "000.png"
    edited.write_bytes(image_bytes(_gray(99)))
    os.utime(edited, ns=(1, 1))
    third = load_dataset(f"imagefolder:{root}")
    assert third.source.startswith("user folder") and third.fingerprint != first.fingerprint


def test_missing_imagefolder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(f"imagefolder:{tmp_path / 'nope'}")
