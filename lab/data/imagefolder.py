"""``imagefolder:<path>``: a folder of class subfolders holding PNG or JPEG images.

Layouts: ``<path>/train/<class>/...`` and ``<path>/test/<class>/...`` give the splits;
otherwise ``<path>/<class>/...`` is split deterministically, every 5th file of each
class (sorted by path) going to test. Class names are the sorted subfolder names (of
``train`` when split). Files and folders whose names start with "." are ignored.

All images must have one size. If every image is grayscale the arrays have 1 channel,
else 3 (RGB; alpha is dropped). There is no known checksum for a user's folder: the
file record is one entry for the whole folder whose ``sha256`` covers every file's
relative path and content.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import numpy as np

from lab.core.errors import DataError, LabError
from lab.data.checksums import read_bytes
from lab.data.dataset import Arrays
from lab.data.images import GRAY_MODES, HIGH_DEPTH_MODES, MAX_FILE_BYTES, MAX_PIXELS, decode_image

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg"})

Item = tuple[Path, int]  # (file, class index)


def _visible(path: Path, root: Path) -> bool:
    return not any(part.startswith(".") for part in path.relative_to(root).parts)


def _class_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _class_files(class_dir: Path) -> list[Path]:
    files = sorted(p for p in class_dir.rglob("*") if p.is_file() and _visible(p, class_dir))
    for p in files:
        if p.suffix.lower() not in IMAGE_SUFFIXES:
            raise DataError(f"{p} is not a PNG or JPEG image; remove it from the image folder.")
    return files


def scan_imagefolder(root: Path) -> tuple[tuple[str, ...], list[Item], list[Item]]:
    """List an image folder: ``(class_names, train_items, test_items)``, deterministic order."""
    if not root.is_dir():
        raise DataError(f"image folder {root} does not exist or is not a folder.")
    train_dir, test_dir = root / "train", root / "test"
    train: list[Item] = []
    test: list[Item] = []
    if train_dir.is_dir() and test_dir.is_dir():
        classes = tuple(d.name for d in _class_dirs(train_dir))
        index = {name: i for i, name in enumerate(classes)}
        for d in _class_dirs(test_dir):
            if d.name not in index:
                raise DataError(
                    f"{d} is a class that {train_dir} does not have; add it to train or remove it."
                )
        for name, i in index.items():
            train += [(p, i) for p in _class_files(train_dir / name)]
            if (test_dir / name).is_dir():
                test += [(p, i) for p in _class_files(test_dir / name)]
    else:
        classes = tuple(d.name for d in _class_dirs(root))
        for i, name in enumerate(classes):
            files = _class_files(root / name)
            if not files:
                raise DataError(
                    f"class folder {root / name} holds no images; add some or remove it."
                )
            train += [(p, i) for k, p in enumerate(files) if k % 5 != 4]
            test += [(p, i) for k, p in enumerate(files) if k % 5 == 4]
    if not classes:
        raise DataError(
            f"image folder {root} has no class subfolders; put images in <folder>/<class>/."
        )
    if not train or not test:
        raise DataError(
            f"image folder {root} gives an empty {'train' if not train else 'test'} split; "
            "add train/ and test/ subfolders or at least 5 images per class."
        )
    return classes, train, test


def imagefolder_key(root: Path) -> str:
    """A cheap key of the folder's state (paths, sizes, mtimes) to invalidate caches on edits."""
    h = hashlib.sha256()
    for p in sorted(q for q in root.rglob("*") if q.is_file() and _visible(q, root)):
        st = p.stat()
        h.update(f"{p.relative_to(root).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _decode(path: Path, data: bytes) -> np.ndarray:
    """Decode one image into uint8 [H, W] (grayscale) or [H, W, 3] (RGB), with the user image
    reader's checks (:func:`lab.data.images.decode_image`); 16-bit and float images are refused."""
    try:
        img, _ = decode_image(data, str(path), max_pixels=MAX_PIXELS)
    except LabError as exc:
        raise DataError(f"{exc}; replace or remove it.") from None
    with img:
        if img.mode in HIGH_DEPTH_MODES:
            raise DataError(f"{path} is a {img.mode} (16-bit or float) image; convert it to 8-bit.")
        return np.asarray(img.convert("L" if img.mode in GRAY_MODES else "RGB"))


def _stack(images: list[np.ndarray], rgb: bool) -> np.ndarray:
    if not images:
        return np.zeros((0, 3 if rgb else 1, 1, 1), dtype=np.uint8)
    if rgb:
        images = [np.repeat(a[:, :, None], 3, axis=2) if a.ndim == 2 else a for a in images]
        return np.ascontiguousarray(np.stack(images).transpose(0, 3, 1, 2))
    return np.stack(images)[:, None, :, :]


def read_imagefolder(root: Path) -> tuple[Arrays, tuple[str, ...], list[dict[str, Any]]]:
    """Read an image folder into uint8 [N, C, H, W] arrays; returns arrays, classes, record."""
    classes, train, test = scan_imagefolder(root)
    digest = hashlib.sha256()
    total = 0
    expected: tuple[int, int] | None = None
    first: Path | None = None
    decoded: dict[str, list[np.ndarray]] = {"train": [], "test": []}
    for split, items in (("train", train), ("test", test)):
        for path, _ in items:
            data = read_bytes(path, limit=MAX_FILE_BYTES)
            total += len(data)
            digest.update(
                f"{path.relative_to(root).as_posix()}\0{hashlib.sha256(data).hexdigest()}\n".encode()
            )
            arr = _decode(path, data)
            size = (arr.shape[1], arr.shape[0])
            if expected is None:
                expected, first = size, path
            elif size != expected:
                raise DataError(
                    f"{path} is {size[0]}x{size[1]} pixels but the images must all be "
                    f"{expected[0]}x{expected[1]} (like {first}); resize it or remove it."
                )
            decoded[split].append(arr)
    rgb = any(a.ndim == 3 for a in decoded["train"] + decoded["test"])
    arrays = Arrays(
        _stack(decoded["train"], rgb),
        np.array([i for _, i in train], dtype=np.int64),
        _stack(decoded["test"], rgb),
        np.array([i for _, i in test], dtype=np.int64),
    )
    record = {
        "path": str(root),
        "bytes": total,
        "sha256": digest.hexdigest(),
        "files": len(train) + len(test),
    }
    log.info("read %d images of %d classes from %s", len(train) + len(test), len(classes), root)
    return arrays, classes, [record]
