"""Small page helpers: user mistakes shown as one sentence, percentages, run names."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from lab.core.errors import LabError


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Show a :class:`lab.core.errors.LabError` raised inside the block as ``st.error`` (its one
    sentence), never as a traceback; the rest of the block is skipped."""
    try:
        yield
    except LabError as exc:
        st.error(str(exc))


def run_name(path: str | os.PathLike[str], root: str | os.PathLike[str]) -> str:
    """A run folder relative to the runs folder (``mnist_smallcnn``), else as given."""
    try:
        rel = Path(path).resolve().relative_to(Path(root).resolve())
        return str(rel) if str(rel) != "." else Path(path).name
    except (ValueError, OSError):
        return str(path)


def show(where: DeltaGenerator | Any, img: np.ndarray, caption: str | None = None) -> None:
    """A picture (``where``: a container, a column or the ``st`` module) at its own pixel size, as PNG (JPEG would smear a 28x28 digit's edges)."""
    where.image(img, caption=caption, width=int(img.shape[1]), output_format="PNG")
