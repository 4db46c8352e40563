"""Progress that suits where it goes: tqdm's bars on a terminal, plain lines in a log.

A bar redraws itself with carriage returns, which a terminal shows as one moving line and a
log file keeps as thousands of updates on one line. :func:`progress` returns a ``tqdm`` bar
when the stream is a terminal, and otherwise a :class:`LineProgress` with the part of
tqdm's interface the lab uses (``update``, ``set_description``, ``set_postfix``,
``set_postfix_str``, ``close``, a context manager) that writes one line per finished stage:

- ``lines="stage"`` (an attack stage, the masking checks): a line whenever the description
  changes after some work under the old one, and one at ``close``;
- ``lines="update"`` (the cells of a sweep): a line per ``update``, with the count, the
  elapsed time and an estimate of what is left;
- ``lines="none"`` (a training epoch, whose summary the trainer already logs): nothing.

``LAB_PROGRESS`` chooses for every bar: ``bar`` (always tqdm: the dashboard's job runner,
which shows a log's last carriage-return segment, sets it), ``lines`` (always lines) or
``off``; unset or ``auto``: a bar on a terminal, lines elsewhere.
"""

from __future__ import annotations

import os
import sys
import time
from types import TracebackType
from typing import IO, Any, Literal

from tqdm.auto import tqdm

Lines = Literal["stage", "update", "none"]
MODES = ("auto", "bar", "lines", "off")


def progress_mode(stream: IO[str] | None = None) -> str:
    """``bar``, ``lines`` or ``off``: ``LAB_PROGRESS`` if set, else a bar on a terminal only."""
    mode = os.environ.get("LAB_PROGRESS", "auto").strip().lower() or "auto"
    if mode not in MODES:
        mode = "auto"
    if mode != "auto":
        return mode
    stream = stream if stream is not None else sys.stderr
    try:
        return "bar" if stream.isatty() else "lines"
    except (AttributeError, ValueError):
        return "lines"


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class LineProgress:
    """tqdm's interface, printing whole lines (see the module docstring)."""

    def __init__(self, *, total: int | None, desc: str, unit: str, lines: Lines, initial: int = 0,
                 file: IO[str] | None = None) -> None:  # fmt: skip
        self.total, self.desc, self.unit, self.lines = total, desc, unit, lines
        self.n = initial
        self.file = file
        self.postfix = ""
        self._t0 = self._stage_t0 = time.perf_counter()
        self._initial = initial
        self._stage_start = initial
        self._closed = False

    # tqdm's interface -------------------------------------------------------------------
    def update(self, n: int = 1) -> None:
        self.n += n
        if self.lines == "update" and n:
            self._write(self._update_line())

    def set_description(self, desc: str | None = None, refresh: bool = True) -> None:
        desc = desc or ""
        if desc != self.desc:
            self._end_stage()
            self.desc = desc

    def set_postfix(self, ordered_dict: dict[str, Any] | None = None, refresh: bool = True, **kwargs: Any) -> None:
        items = {**(ordered_dict or {}), **kwargs}
        self.postfix = ", ".join(f"{k}={v}" for k, v in items.items())

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        self.postfix = s

    def refresh(self) -> None:
        pass

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._end_stage()

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:  # fmt: skip
        self.close()

    # lines ------------------------------------------------------------------------------
    def _end_stage(self) -> None:
        done = self.n - self._stage_start
        if self.lines == "stage" and done > 0:
            dt = time.perf_counter() - self._stage_t0
            of = f" (total {self.n}/{self.total})" if self.total else ""
            tail = f"; {self.postfix}" if self.postfix else ""
            self._write(f"{self.desc}: {done} {self.unit} in {dt:.1f}s{of}{tail}")
        self._stage_start = self.n
        self._stage_t0 = time.perf_counter()

    def _update_line(self) -> str:
        elapsed = time.perf_counter() - self._t0
        done_here = self.n - self._initial
        left = ""
        if self.total and done_here > 0 and self.n < self.total:
            left = f", about {_clock(elapsed / done_here * (self.total - self.n))} left"
        of = f"/{self.total}" if self.total else ""
        tail = f" (last: {self.postfix})" if self.postfix else ""
        return f"{self.desc}: {self.n}{of} {self.unit}s, {_clock(elapsed)} elapsed{left}{tail}"

    def _write(self, line: str) -> None:
        stream = self.file if self.file is not None else sys.stderr
        print(line, file=stream, flush=True)


def progress(*, total: int | None, desc: str, unit: str = "it", enabled: bool = True, lines: Lines = "stage",
             leave: bool = False, initial: int = 0, file: IO[str] | None = None,
             mininterval: float = 0.1) -> Any:  # fmt: skip
    """A tqdm bar or a :class:`LineProgress`, as :func:`progress_mode` says; disabled: a silent tqdm."""
    mode = progress_mode(file) if enabled else "off"
    if mode == "lines":
        return LineProgress(total=total, desc=desc, unit=unit, lines=lines, initial=initial, file=file)
    return tqdm(total=total, desc=desc, unit=unit, disable=mode == "off", leave=leave, initial=initial,
                file=file, mininterval=mininterval)  # fmt: skip
