"""An append-only journal of a long job's finished items, so an interrupted job resumes without
redoing them: ``Journal(path, request)``.

The file is JSON lines: the first names the request (everything that changes the results: the
weights' digest, the images, the method's settings), each further line one finished item
(``{"key": ..., "value": ...}``), written and flushed as it finishes. :meth:`Journal.done` reads
back the items of the same request; a journal of another request is replaced when the first new
item is written, and a last line cut short by a kill is ignored. :meth:`Journal.finish`
removes the file once the job's report is written.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from lab.core.io import atomic_write_bytes


class Journal:
    """The finished items of one request, kept in ``path``."""

    def __init__(self, path: str | os.PathLike[str], request: Mapping[str, Any]) -> None:
        self.path = Path(path)
        self.request = json.loads(json.dumps(dict(request)))  # as it reads back
        self._file: IO[str] | None = None

    def done(self) -> dict[str, Any]:
        """``{key: value}`` of the items this request finished before (empty for another request's
        journal, an unreadable one or none)."""
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            return {}
        try:
            if not lines or json.loads(lines[0]).get("request") != self.request:
                return {}
        except (json.JSONDecodeError, AttributeError):
            return {}
        out: dict[str, Any] = {}
        for line in lines[1:]:
            try:
                item = json.loads(line)
                out[str(item["key"])] = item["value"]
            except (json.JSONDecodeError, KeyError, TypeError):
                break  # the line a kill cut short, and nothing after it
        return out

    def add(self, key: str, value: Any) -> None:
        """Record one finished item (the first of a new request starts the journal afresh, keeping
        the items of this request found by :meth:`done`)."""
        if self._file is None:
            kept = self.done()
            head = [json.dumps({"request": self.request})]
            head += [json.dumps({"key": k, "value": v}) for k, v in kept.items()]
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(self.path, ("\n".join(head) + "\n").encode("utf-8"))
            self._file = self.path.open("a", encoding="utf-8")
        self._file.write(json.dumps({"key": str(key), "value": value}) + "\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def finish(self) -> None:
        """The job's report is written: the journal is no longer needed."""
        self.close()
        self.path.unlink(missing_ok=True)
