"""Where the dashboard looks: the runs folder (models, reports, training jobs), the
sweeps folder (``lab sweep run`` outputs, for the Experiments page) and the recipes folder
(``lab train`` recipes for the Models page).

The runs folder is ``$LAB_RUNS_DIR`` or ``runs`` (relative to where ``streamlit run`` was
started), changeable in the sidebar for the session; the sweeps folder likewise is
``$LAB_SWEEPS_DIR`` or ``sweeps`` (where ``lab sweep run`` writes by default). The recipes
folder is ``$LAB_CONFIGS_DIR`` or the repository's ``configs/``.
"""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

RUNS_ENV = "LAB_RUNS_DIR"
RECIPES_ENV = "LAB_CONFIGS_DIR"
RUNS_KEY = "runs_dir"
SWEEPS_ENV = "LAB_SWEEPS_DIR"
SWEEPS_KEY = "sweeps_dir"


def default_runs_dir() -> str:
    return os.environ.get(RUNS_ENV) or "runs"


def default_sweeps_dir() -> str:
    return os.environ.get(SWEEPS_ENV) or "sweeps"


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


def _folder_field(key: str, label: str, default: str, help_text: str) -> None:
    """A sidebar text field for a folder, starting at ``default`` the first time in a session."""
    if key not in st.session_state:
        st.session_state[key] = default
    st.sidebar.text_input(label, key=key, help=help_text)


def runs_folder_setting() -> Path:
    """The sidebar field for the runs folder (shared by every page); returns the folder."""
    _folder_field(RUNS_KEY, "Runs folder", str(default_runs_dir()),
                  f"Where models, reports and training jobs are found (default: ${RUNS_ENV} or runs)")  # fmt: skip
    return runs_dir()


def sweeps_dir() -> Path:
    """The sweeps folder this session looks at (each sweep is a folder in it)."""
    value = st.session_state.get(SWEEPS_KEY)
    return Path(str(value).strip() or default_sweeps_dir()) if value is not None else Path(default_sweeps_dir())


def sweeps_folder_setting() -> Path:
    """The sidebar field for the sweeps folder (the Experiments page's); returns the folder."""
    _folder_field(SWEEPS_KEY, "Sweeps folder", str(default_sweeps_dir()),
                  f"Where `lab sweep run` wrote its sweeps (default: ${SWEEPS_ENV} or sweeps)")  # fmt: skip
    return sweeps_dir()


def keep_page_settings() -> None:
    """Keep the fields only some pages draw (the sweeps folder) while another page is shown:
    Streamlit forgets a widget's value after a run that does not draw it, unless the value is
    set again (called by ``app.py`` on every run)."""
    if SWEEPS_KEY in st.session_state:
        st.session_state[SWEEPS_KEY] = st.session_state[SWEEPS_KEY]
