"""What several commands do with their arguments: one epsilon, notes about user images."""

from __future__ import annotations

import sys

from lab.core.epsilon import check_eps, parse_eps
from lab.core.errors import LabError
from lab.runs.samples import Samples


def one_eps(text: str, norm: str, command: str, hint: str = "") -> float:
    """``--eps`` of a command that takes a single radius, parsed and checked against ``norm``."""
    values = parse_eps(text)
    if len(values) != 1:
        raise LabError(f"lab {command} takes one epsilon, got {len(values)} ({text}){hint}")
    check_eps(values, norm)
    return values[0]


def print_notes(samples: Samples) -> None:
    """What was done to the user's image files to fit the model (``note: ...`` on stderr)."""
    for note in samples.notes:
        print(f"note: {note}", file=sys.stderr)
