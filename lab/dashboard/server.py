"""``python -m lab.dashboard.server [streamlit run's options]``: ``streamlit run app.py`` with
the Playground's imports loaded while the server starts (:mod:`lab.dashboard.warm`).

``make dashboard``, ``make demo`` and :func:`lab.dashboard.serve.start` start the dashboard
this way; ``streamlit run app.py`` works too, its first page run importing them itself.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from lab.dashboard import warm
from lab.dashboard.serve import APP


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    from streamlit.web import cli  # before the thread starts: the two never import streamlit at once

    warm.start()
    sys.argv = ["streamlit", "run", str(APP), *args]
    cli.main()


if __name__ == "__main__":
    main()
