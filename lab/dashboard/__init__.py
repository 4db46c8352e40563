"""The Streamlit dashboard: pages that render what the lab's Python API returns.

``app.py`` (at the repository root) is the ``st.navigation`` router; the pages live in
:mod:`lab.dashboard.pages` (one file each: Playground, Compare models, Reports, Models,
Experiments).
The helpers here are split by whether they need Streamlit:

* plain Python, usable and tested without a browser: :mod:`~lab.runs.playground` (the
  calls a page makes for one image: attack, probabilities, explanations, a defense),
  :mod:`~lab.dashboard.uploads` (checking and converting an uploaded image),
  :mod:`~lab.present.reports` and :mod:`~lab.present.explanations` (finding and tabulating
  reports), :mod:`~lab.present.models` (words about a model's defense),
  :mod:`~lab.dashboard.jobs` (background ``lab train`` runs that outlive the page; their
  records in :mod:`~lab.dashboard.job_record`), :mod:`~lab.present.plots` (matplotlib
  figures), :mod:`~lab.dashboard.images` (pictures for ``st.image``) and
  :mod:`~lab.dashboard.sweep_folders` (the sweeps the Experiments page finds, its refresh);
* Streamlit: :mod:`~lab.dashboard.settings` (the runs and sweeps folders), :mod:`~lab.dashboard.cache`
  (``st.cache_resource`` models, ``st.cache_data`` results), :mod:`~lab.dashboard.widgets`
  (model, image, attack and epsilon pickers shared by pages) and :mod:`~lab.dashboard.ui`
  (user errors as one sentence, never a traceback).
"""
