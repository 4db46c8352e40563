"""The lab's dataset cache: one ``.npz`` per dataset under ``cache_dir()/datasets``.

A cache file holds ``train_x``, ``train_y``, ``test_x``, ``test_y``, ``class_names`` and a
JSON ``meta`` string (format version, dataset name, fingerprint, origin, optional key).
It is written atomically, loaded with ``allow_pickle=False``, and never trusted: its
arrays' fingerprint must equal the dataset's known fingerprint (or, for datasets without
one, the fingerprint recorded when it was built, and the key must match). A cache file
that fails any check is reported by :class:`CacheInvalid` and rebuilt by the caller.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from lab.core.errors import DataError
from lab.core.io import atomic_path
from lab.data.checksums import file_record, read_bytes
from lab.data.dataset import Arrays, Dataset, fingerprint, validate_arrays

log = logging.getLogger(__name__)

CACHE_FORMAT = 1
_ARRAY_KEYS = ("train_x", "train_y", "test_x", "test_y")


class CacheInvalid(Exception):
    """A cache file exists but failed verification; ``str(exc)`` says why."""


def cache_dir() -> Path:
    """The lab's cache folder.

    ``$LAB_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/lab``, else ``~/.cache/lab``.
    """
    if os.environ.get("LAB_CACHE_DIR"):
        return Path(os.environ["LAB_CACHE_DIR"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "lab"
    return Path.home() / ".cache" / "lab"


def datasets_dir() -> Path:
    """Where dataset caches live: ``cache_dir()/datasets``."""
    return cache_dir() / "datasets"


def cache_path(name: str) -> Path:
    """The cache file of dataset ``name`` (image folders: keyed by the folder's absolute path)."""
    if name.startswith("imagefolder:"):
        digest = hashlib.sha256(name.removeprefix("imagefolder:").encode()).hexdigest()[:16]
        return datasets_dir() / f"imagefolder-{digest}.npz"
    return datasets_dir() / f"{name}.npz"


def write_cache(path: Path, ds: Dataset, *, key: str = "") -> bool:
    """Write ``ds`` to ``path`` atomically; on failure log a warning and return False."""
    meta = {
        "format": CACHE_FORMAT,
        "name": ds.name,
        "fingerprint": ds.fingerprint,
        "origin": ds.source,
        "key": key,
    }
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(
                fh,
                train_x=ds.train_x,
                train_y=ds.train_y,
                test_x=ds.test_x,
                test_y=ds.test_y,
                class_names=np.array(ds.class_names, dtype=str),
                meta=np.array(json.dumps(meta)),
            )
    except OSError as exc:
        log.warning(
            "could not write the dataset cache %s (%s); the next load reads the sources again",
            path,
            exc,
        )
        return False
    log.info("cached %s in %s", ds.name, path)
    return True


def read_cache(
    path: Path, *, name: str, expected_fingerprint: str | None, key: str = ""
) -> tuple[Arrays, tuple[str, ...], str, dict[str, Any]] | None:
    """Load and verify a cache file; None if absent, :class:`CacheInvalid` if it fails a check.

    Returns ``(arrays, class_names, fingerprint, file_record)``.
    """
    if not path.exists():
        return None
    try:
        data = read_bytes(path)
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            missing = [k for k in (*_ARRAY_KEYS, "class_names", "meta") if k not in npz.files]
            if missing:
                raise CacheInvalid(f"it lacks {', '.join(missing)}")
            arrays = Arrays(*(npz[k] for k in _ARRAY_KEYS))
            class_names = tuple(str(c) for c in npz["class_names"].reshape(-1))
            meta = json.loads(str(npz["meta"]))
    except CacheInvalid:
        raise
    except (DataError, OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise CacheInvalid(f"it cannot be read ({type(exc).__name__}: {exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != CACHE_FORMAT or meta.get("name") != name:
        raise CacheInvalid(f"its metadata does not describe {name} in cache format {CACHE_FORMAT}")
    if meta.get("key", "") != key:
        raise CacheInvalid("the source folder changed since it was built")
    try:
        validate_arrays(arrays, len(class_names), what=str(path))
    except DataError as exc:
        raise CacheInvalid(str(exc)) from exc
    fp = fingerprint(*arrays)
    want = expected_fingerprint or meta.get("fingerprint")
    if fp != want:
        raise CacheInvalid(f"its content fingerprint is {fp}, expected {want}")
    return arrays, class_names, fp, file_record(str(path), data)
