"""Where the dashboard looks: the runs folder (models, reports, training jobs) and the
recipes folder (``lab train`` recipes for the Models page).

The runs folder is ``$LAB_RUNS_DIR`` or ``runs`` (relative to where ``streamlit run`` was
started), changeable in the sidebar for the session. The recipes folder is
``$LAB_CONFIGS_DIR`` or the repository's ``configs/``.
"""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

RUNS_ENV = "LAB_RUNS_DIR"
RECIPES_ENV = "LAB_CONFIGS_DIR"
RUNS_KEY = "runs_dir"


def default_runs_dir() -> str:
    return os.environ.get(RUNS_ENV) or "runs"


def runs_dir() -> Path:
    """The runs folder this session looks at."""
    value = st.session_state.get(RUNS_KEY)
    return Path(str(value).strip() or default_runs_dir()) if value is not None else Path(default_runs_dir())


def recipes_dir() -> Path:
    """The folder of training recipes the Models page offers."""
    env = os.environ.get(RECIPES_ENV)
    if env:
        return Path(env)
    here = Path(__file__).resolve().parents[2] / "configs"
    return here if here.is_dir() else Path("configs")


def runs_folder_setting() -> Path:
    """The sidebar field for the runs folder (shared by every page); returns the folder."""
    if RUNS_KEY not in st.session_state:
        st.session_state[RUNS_KEY] = default_runs_dir()
    st.sidebar.text_input("Runs folder", key=RUNS_KEY,
                          help=f"Where models, reports and training jobs are found (default: ${RUNS_ENV} or runs)")  # fmt: skip
    return runs_dir()
