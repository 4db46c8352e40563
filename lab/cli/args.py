"""Arguments several ``lab`` sub-parsers share: the epsilon syntax and ``--data-dir``."""

from __future__ import annotations

import argparse

EPS_HELP = "epsilons: 0.3, 8/255, a list 0,0.1,0.2,0.3 or an inclusive range 0:0.3:0.05"


def add_data_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help="folder with your own copy of the dataset files (default: $LAB_DATA_DIR)")
