"""Downloading dataset files over HTTP(S) and extracting the CIFAR-10 archive safely.

A download goes to a temporary file next to its destination, is md5-verified against
the published value, and only then renamed into place (:func:`lab.core.io.atomic_path`).
Tar extraction writes only expected member names, as regular files, into one folder:
no links, no absolute paths, no ``..``.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tarfile
import urllib.request
from collections.abc import Collection
from pathlib import Path

from lab.core.errors import DataError
from lab.core.io import atomic_path
from lab.data.checksums import ChecksumError

log = logging.getLogger(__name__)

DOWNLOAD_TIMEOUT_S = 30.0
MAX_DOWNLOAD_BYTES = 512 << 20  # cifar-10-python.tar.gz is 163 MB
_CHUNK = 1 << 20


def fetch(url: str, dest: Path, *, md5: str, timeout: float = DOWNLOAD_TIMEOUT_S) -> Path:
    """Download ``url`` to ``dest`` if its md5 is ``md5``; raise :class:`DataError` otherwise.

    Network errors raise ``OSError`` (``urllib.error.URLError`` is one) for the caller
    to report among the sources it tried. ``dest`` is never left half-written.
    """
    log.info("downloading %s", url)
    with atomic_path(dest) as tmp:
        h = hashlib.md5(usedforsecurity=False)
        size = 0
        with urllib.request.urlopen(url, timeout=timeout) as resp, open(tmp, "wb") as fh:
            while chunk := resp.read(_CHUNK):
                size += len(chunk)
                if size > MAX_DOWNLOAD_BYTES:
                    raise DataError(
                        f"{url} sent more than {MAX_DOWNLOAD_BYTES} bytes; "
                        "it is not the expected file."
                    )
                h.update(chunk)
                fh.write(chunk)
        if h.hexdigest() != md5:
            raise ChecksumError(
                f"{url} sent a file with md5 {h.hexdigest()}, expected {md5}; "
                "the mirror is broken, try again later.",
                path=url,
                actual=h.hexdigest(),
            )
    return dest


def extract_members(archive: Path, prefix: str, names: Collection[str], dest: Path) -> list[Path]:
    """Extract ``prefix/name`` for each of ``names`` from a tar archive into ``dest/name``.

    Only regular-file members with exactly those names are written; everything else in
    the archive is ignored. Returns the files written.
    """
    wanted = {f"{prefix}/{n}": n for n in names}
    written: list[Path] = []
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                name = wanted.get(member.name.removeprefix("./"))
                if name is None or not member.isfile():
                    continue
                src = tar.extractfile(member)
                if src is None:  # pragma: no cover - isfile() members always have data
                    continue
                with src, atomic_path(dest / name) as tmp, open(tmp, "wb") as fh:
                    shutil.copyfileobj(src, fh)
                written.append(dest / name)
    except (OSError, tarfile.TarError, EOFError) as exc:
        raise DataError(
            f"{archive} is not a readable tar archive ({exc}); delete it and fetch it again."
        ) from exc
    return written
