"""A sweep's figures, cached (``st.cache_data``) under the sweep's store key
(:func:`lab.dashboard.sweep_folders.store_key`, which changes with every finished cell), so
a page that refreshes while a sweep runs redraws only what changed. Apart from
:mod:`lab.dashboard.cache` so that the other pages do not import the sweep machinery
(about 1.5 s of the dashboard's cold start).
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping

import streamlit as st

from lab.dashboard.sweep_folders import store_key
from lab.experiments.sweep import SweepStatus
from lab.present.sweeps import PLOTS, explain_figure, robust_vs_eps_figure, time_figure, tradeoff_figure


def _items(settings: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(settings.items()))


@st.cache_data(max_entries=64, show_spinner=False)
def _sweep_png(folder: str, key: str, kind: str, by: str, where: tuple[tuple[str, str], ...], metric: str,
               _status: SweepStatus) -> bytes:  # fmt: skip
    pinned = dict(where) or None
    if kind == "robust-vs-eps":
        fig = robust_vs_eps_figure(folder, by=by, where=pinned)
    elif kind == "tradeoff":
        fig = tradeoff_figure(folder, by=by, where=pinned)
    elif kind == "explain":
        fig = explain_figure(folder, metric=metric, by=by, where=pinned)
    else:
        fig = time_figure(_status)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return buf.getvalue()


def sweep_figure(folder: str | os.PathLike[str], kind: str, status: SweepStatus, *, by: str = "model",
                 where: Mapping[str, str] | None = None, metric: str = "deletion_auc") -> bytes:  # fmt: skip
    """Figure ``kind`` (one of :data:`lab.present.sweeps.PLOTS`) of the sweep in ``folder`` as
    PNG bytes, drawn by :mod:`lab.present.sweeps` once per state of the store (``status``: the
    sweep's current :class:`~lab.experiments.sweep.SweepStatus`, for the time figure)."""
    if kind not in PLOTS:
        raise ValueError(f"unknown sweep figure {kind!r}; the figures are: {', '.join(PLOTS)}")
    return _sweep_png(str(folder), store_key(folder), kind, by, _items(where or {}), metric, status)
