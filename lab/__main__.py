"""``python -m lab``: the same as the ``lab`` console script."""

from lab.cli import main

raise SystemExit(main())
