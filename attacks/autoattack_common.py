"""Shared plumbing for the adapters of the official AutoAttack package (PyPI ``pyautoattack``,
a packaging of fra31/auto-attack; Croce & Hein, 2020).

* :func:`import_autoattack`: the package, imported on first use, LabError when missing;
* :data:`AA_NORMS`: the lab's norm names to AutoAttack's (``linf -> "Linf"``, ``l2 -> "L2"``);
* :func:`set_apgd_iters`: APGD derives its step-size checkpoints (``n_iter_2``,
  ``n_iter_min``, ``size_decr``) from ``n_iter`` in ``__init__``; setting ``n_iter`` on a
  built attack (as AutoAttack's own docs suggest) leaves them at the 100-step values, so
  the step size is never halved in a short run. This sets all of them consistently;
* :func:`class_count`: the number of classes, from the model's metadata or one forward pass.

The package logs to the ``"auto-attack"`` logger (``logging``); its sub-attacks are built
with ``verbose=False``, so nothing is printed; its own flags (warnings such as "Square
decreased robust accuracy", a randomized or non-softmax model) are collected by
:func:`collect_flags` into the attack's ``notes``, which the evaluator puts in the report. It seeds torch's global generator itself
(``torch.manual_seed``), so every call runs inside :func:`lab.core.rng.seeded`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import torch
from torch import nn

from attacks.base import num_classes_of
from lab.core.errors import LabError

AA_NORMS = {"linf": "Linf", "l2": "L2"}
AA_LOGGER = logging.getLogger("auto-attack")


def import_autoattack() -> ModuleType:
    """The ``pyautoattack`` package (with its ``autopgd_base`` and ``square`` modules loaded)."""
    try:
        # on first use, not at the top: only the AutoAttack attacks need the package
        import pyautoattack
        import pyautoattack.autopgd_base
        import pyautoattack.square
    except ImportError as e:
        raise LabError(f"AutoAttack needs the 'pyautoattack' package (pip install pyautoattack): {e}") from None
    return pyautoattack


def set_apgd_iters(apgd: Any, n_iter: int) -> None:
    """Give an APGD attack ``n_iter`` iterations with the checkpoints its ``__init__`` would set."""
    apgd.n_iter = n_iter
    apgd.n_iter_orig = n_iter
    apgd.n_iter_2 = max(int(0.22 * n_iter), 1)
    apgd.n_iter_min = max(int(0.06 * n_iter), 1)
    apgd.size_decr = max(int(0.03 * n_iter), 1)


def class_count(model: nn.Module, x: torch.Tensor) -> int:
    n = num_classes_of(model)
    if n is None:
        with torch.no_grad():
            n = int(model(x[:1]).shape[-1])
    return int(n)


def need_classes(what: str, n: int, minimum: int) -> None:
    if n < minimum:
        raise LabError(f"{what} needs a model with at least {minimum} classes, this one has {n}")


class _Collect(logging.Handler):
    def __init__(self, into: list[str]) -> None:
        super().__init__(level=logging.WARNING)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        text = " ".join(record.getMessage().split())
        if text and text not in self.into:
            self.into.append(text)


@contextlib.contextmanager
def collect_flags(into: list[str]) -> Iterator[None]:
    """Append every warning AutoAttack logs inside the block to ``into`` (once each)."""
    handler = _Collect(into)
    AA_LOGGER.addHandler(handler)
    try:
        yield
    finally:
        AA_LOGGER.removeHandler(handler)
