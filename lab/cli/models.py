"""``lab models``: the checkpoints under a folder with their status and test accuracy."""

from __future__ import annotations

import argparse
import json
from typing import Any

from lab.core.text import pct
from lab.training.checkpoint import list_checkpoints


def _pct(v: Any) -> str:
    """A metric as ``81.25%``; ``-`` when it is missing or not a number."""
    return pct(v) if isinstance(v, (int, float)) else "-"


def run(args: argparse.Namespace) -> int:
    rows = list_checkpoints(args.dir)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print(f"no checkpoints under {args.dir}")
        return 0
    table = [("run", "arch", "dataset", "status", "epochs", "test acc", "defense")]
    for r in rows:
        if "error" in r:
            table.append((r["path"], "-", "-", r["error"], "-", "-", "-"))
            continue
        defense = r.get("defense") or "-"
        if isinstance(defense, dict):
            defense = defense.get("name", "?")
        table.append((r["path"], r["arch"], r["dataset"], r["status"], str(r.get("epochs") or "-"),
                      _pct(r["metrics"].get("test_acc")), str(defense)))  # fmt: skip
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    return 0
