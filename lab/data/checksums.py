"""Reading files with a size cap, bounded gunzip, and checksum verification.

Every dataset file is read into memory once, hashed, and only parsed (or unpickled)
after its checksum matched a known value. A mismatch raises :class:`ChecksumError`, a
:class:`DataError` that names the file, the expected and the actual checksum.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import zlib
from collections.abc import Collection
from pathlib import Path
from typing import Any

from lab.core.errors import DataError

GZIP_MAGIC = b"\x1f\x8b"
MAX_FILE_BYTES = 1 << 30  # no dataset file the lab reads is larger than 1 GiB


class ChecksumError(DataError):
    """A file's checksum matched none of the known values; ``actual`` is the digest seen."""

    def __init__(self, message: str, *, path: str, actual: str) -> None:
        super().__init__(message)
        self.path = path
        self.actual = actual


def sha256_hex(data: bytes) -> str:
    """Return the sha256 hex digest of ``data``."""
    return hashlib.sha256(data).hexdigest()


def md5_hex(data: bytes) -> str:
    """Return the md5 hex digest of ``data`` (only to compare with published md5 tables)."""
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def hash_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Stream a (large) file once: ``{"path", "bytes", "sha256", "md5"}``."""
    sha, md5, size = hashlib.sha256(), hashlib.md5(usedforsecurity=False), 0
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                sha.update(chunk)
                md5.update(chunk)
                size += len(chunk)
    except OSError as exc:
        raise DataError(
            f"cannot read {path} ({exc.strerror or exc}); check that it exists and is readable."
        ) from exc
    return {"path": str(path), "bytes": size, "sha256": sha.hexdigest(), "md5": md5.hexdigest()}


def read_bytes(path: str | os.PathLike[str], *, limit: int = MAX_FILE_BYTES) -> bytes:
    """Read a whole file, refusing files larger than ``limit`` bytes."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > limit:
            raise DataError(
                f"{p} is {size} bytes, more than the {limit} expected; "
                "replace it with the original file."
            )
        with open(p, "rb") as fh:
            return fh.read(limit + 1)
    except OSError as exc:
        raise DataError(
            f"cannot read {p} ({exc.strerror or exc}); check that it exists and is readable."
        ) from exc


def gunzip(data: bytes, *, limit: int, what: str) -> bytes:
    """Decompress gzip ``data`` into at most ``limit`` bytes (a decompression-bomb guard)."""
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as gz:
            out = gz.read(limit + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(
            f"{what} is not a valid gzip file ({exc}); delete it and fetch it again."
        ) from exc
    if len(out) > limit:
        raise DataError(
            f"{what} decompresses to more than {limit} bytes; replace it with the original file."
        )
    return out


def open_maybe_gzip(data: bytes, *, limit: int, what: str) -> tuple[bytes, bool]:
    """Return ``(content, was_gzip)``: ``data`` decompressed if it starts with the gzip magic."""
    if data[:2] == GZIP_MAGIC:
        return gunzip(data, limit=limit, what=what), True
    return data, False


def file_record(
    path: str, data: bytes, content: bytes | None = None, *, md5: bool = False
) -> dict[str, Any]:
    """Describe a file read: ``{"path", "bytes", "sha256"}``, plus ``md5`` and ``content_sha256``.

    ``content`` is the decompressed content of a compressed file (recorded as
    ``content_sha256``); ``md5=True`` adds the md5 of the file as stored.
    """
    rec: dict[str, Any] = {"path": path, "bytes": len(data), "sha256": sha256_hex(data)}
    if md5:
        rec["md5"] = md5_hex(data)
    if content is not None:
        rec["content_sha256"] = sha256_hex(content)
    return rec


def verify_record(
    record: dict[str, Any],
    *,
    what: str,
    sha256: Collection[str] = (),
    md5: Collection[str] = (),
    content_sha256: Collection[str] = (),
    fix: str = "delete it or replace it with the original file",
) -> None:
    """Raise :class:`ChecksumError` unless one of ``record``'s digests is a known value.

    ``sha256``/``md5`` are accepted digests of the file as stored; ``content_sha256``
    accepted digests of its decompressed content (or of the file itself if uncompressed).
    """
    content = record.get("content_sha256", record["sha256"])
    if record["sha256"] in sha256 or record.get("md5") in md5 or content in content_sha256:
        return
    if content_sha256:
        kind = "sha256 of its decompressed content" if "content_sha256" in record else "sha256"
        actual, expected = content, " or ".join(sorted(content_sha256))
    elif sha256:
        kind, actual, expected = "sha256", record["sha256"], " or ".join(sorted(sha256))
    else:
        kind, actual, expected = "md5", str(record.get("md5")), " or ".join(sorted(md5))
    raise ChecksumError(
        f"{record['path']} is not the known {what} file "
        f"({kind} is {actual}, expected {expected}); {fix}.",
        path=str(record["path"]),
        actual=actual,
    )
