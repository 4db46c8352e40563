"""The dashboard's pages, one file each, run by ``st.navigation`` in ``app.py``.

Each file is a Streamlit script (``main()`` under ``if __name__ == "__main__"``): it reads
widgets, calls the lab's API through :mod:`lab.dashboard`, and draws the result.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent

#: (file, title, icon) in menu order; the first is the default page
PAGES: tuple[tuple[str, str, str], ...] = (
    ("playground.py", "Playground", ":material/science:"),
    ("compare.py", "Compare models", ":material/compare:"),
    ("reports.py", "Reports", ":material/analytics:"),
    ("models.py", "Models", ":material/model_training:"),
    ("experiments.py", "Experiments", ":material/grid_view:"),
)
