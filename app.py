"""The lab's dashboard: ``streamlit run app.py`` (binds to localhost, see .streamlit/config.toml).

A router only: the pages are files in lab/dashboard/pages/ and call the lab's Python API
through lab.dashboard; nothing is computed here.
"""

from __future__ import annotations

from lab.dashboard import warm

warm.wait()  # started by lab.dashboard.server: the page's imports, loaded while the server came up

import streamlit as st  # noqa: E402

from lab.dashboard.pages import HERE, PAGES  # noqa: E402
from lab.dashboard.settings import keep_page_settings, runs_folder_setting  # noqa: E402

st.set_page_config(page_title="The lab", page_icon=":material/science:", layout="wide")
pages = [st.Page(HERE / file, title=title, icon=icon, default=i == 0) for i, (file, title, icon) in enumerate(PAGES)]
page = st.navigation(pages)
runs_folder_setting()
keep_page_settings()
page.run()
