"""Evaluate a saved model on its own test set: what ``lab eval`` and the dashboard call.

``evaluate_checkpoint(load_model("runs/x"), suite="quick", eps=[0, 0.1, 0.3])`` picks the
attacks (a suite plus extra names), the default epsilon for the data when none is given
(:func:`lab.epsilon.default_eps`), the first ``n`` test images from ``offset`` (verified to
be the data the model was trained on), runs :func:`lab.evaluation.evaluate` and records
the model and the data indices in the report.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.errors import LabError

DEFAULT_SUITE = "quick"


def eval_specs(suite: str | None, attacks: Sequence[str] = ()) -> tuple[list[Any], str | None]:
    """The attack specs to run: ``suite``'s (``quick`` when neither is given) plus ``attacks``.

    Returns ``(specs, suite)``; an attack already in the suite is not added twice.
    """
    from lab.evaluation import as_spec, suite_specs

    if not suite and not attacks:
        suite = DEFAULT_SUITE
    specs = suite_specs(suite) if suite else []
    for name in attacks:
        spec = as_spec(name)
        if spec not in specs:
            specs.append(spec)
    return specs, suite


def eval_name(suite: str | None, attacks: Sequence[str], norm: str) -> str:
    """Folder name of a report: ``quick-linf``, ``pgd+fgsm-l2``, ``quick+square-linf``."""
    parts = ([suite] if suite else []) + [a for a in attacks if a != suite]
    name = "+".join(dict.fromkeys(parts)) or DEFAULT_SUITE
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", f"{name}-{norm}")


def default_report_dir(checkpoint: Any, suite: str | None, attacks: Sequence[str], norm: str) -> Path:
    """``RUN/eval/<suite or attacks>-<norm>`` next to the checkpoint."""
    if not suite and not attacks:
        suite = DEFAULT_SUITE
    return Path(checkpoint.path).parent / "eval" / eval_name(suite, attacks, norm)


def check_threshold(value: float | None) -> float | None:
    """``--fail-under``: None or a fraction in [0, 1]."""
    if value is None:
        return None
    if math.isnan(value) or not 0.0 <= value <= 1.0:
        raise LabError(f"--fail-under {value:g} is not a fraction in [0, 1]; e.g. 0.85 for 85%")
    return value


@dataclass(frozen=True)
class Gate:
    """The verdict of ``--fail-under``: passed or not, and one sentence saying why."""

    passed: bool
    reason: str


def gate(report: Any, threshold: float | None, *, accept_unverified: bool = False) -> Gate | None:
    """``--fail-under``: None without a threshold; else a :class:`Gate`.

    A number is refused (not passed), whatever its value, when a gradient-masking check
    failed on it, when no check ran (``--no-checks``, or every check "not run"), or when only
    weak attacks produced it (an upper bound),
    unless ``accept_unverified``; then it passes when the headline robust accuracy (the
    per-image worst case) is at least ``threshold``.
    """
    if threshold is None:
        return None
    h = report.headline or {}
    acc = h.get("robust_accuracy")
    value = f"robust accuracy {_pct(acc)}"
    if not accept_unverified:
        failed = [c.name for c in report.failed_checks]
        if failed:
            return Gate(False, f"{value} is not accepted: {len(failed)} gradient-masking check"
                               f"{'s' if len(failed) > 1 else ''} failed ({', '.join(failed)}), so the number may "
                               "be far too high (--accept-unverified takes it anyway)")  # fmt: skip
        ran = [c for c in report.checks if c.passed is not None]
        if not ran and any(r.eps > 0 for r in report.results):
            return Gate(False, f"{value} is not accepted: no gradient-masking check ran on it "
                               "(drop --no-checks, or --accept-unverified takes it anyway)")  # fmt: skip
        if h.get("upper_bound_only"):
            return Gate(False, f"{value} is not accepted: only weak attacks produced it "
                               f"({', '.join(h.get('attacks') or [])}), so it is only an upper bound (run --suite "
                               "standard or autoattack, or --accept-unverified takes it anyway)")  # fmt: skip
    if acc is None or (isinstance(acc, float) and math.isnan(acc)) or float(acc) < threshold:
        return Gate(False, f"{value} is below --fail-under {_pct(threshold)}")
    return Gate(True, f"{value} >= --fail-under {_pct(threshold)}")


def _pct(v: Any) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * float(v):.2f}%"


def evaluate_checkpoint(
    checkpoint: Any,
    *,
    suite: str | None = None,
    attacks: Sequence[str] = (),
    eps: Sequence[float] | None = None,
    norm: str = "linf",
    n: int = 1000,
    offset: int = 0,
    batch_size: int = 500,
    checks: bool = True,
    probe_n: int = 200,
    data_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    precision: str | None = None,
) -> Any:
    """Evaluate ``checkpoint`` (a :class:`lab.checkpoint.Checkpoint`) on test images
    ``offset .. offset+n-1`` of its dataset; returns a :class:`lab.report.RobustnessReport`.

    Everything is validated before any data is loaded or attack run: the attacks, the
    epsilons (:func:`lab.evaluation.check_eps`), ``n``, ``batch_size`` and ``probe_n``.
    """
    from lab.epsilon import default_eps
    from lab.evaluation import check_eps, evaluate
    from lab.samples import from_test_set, to_tensor

    specs, suite = eval_specs(suite, attacks)
    info = checkpoint.info
    eps_list = list(eps) if eps is not None else [default_eps(info, norm)]
    eps_list = check_eps(eps_list, norm, info.input_shape)
    if batch_size < 1:
        raise LabError(f"--batch-size must be >= 1, got {batch_size}")
    if checks and probe_n < 1:
        raise LabError(f"--probe-n must be >= 1, got {probe_n} (use --no-checks to skip the checks)")
    samples = from_test_set(info, n, offset, data_dir)
    device = next(checkpoint.model.parameters()).device
    x = to_tensor(samples.x, device)
    assert samples.y is not None
    import torch

    y = torch.from_numpy(samples.y).to(device)
    path = Path(checkpoint.path)
    meta = {
        "arch": info.arch,
        "dataset": info.dataset,
        "run": str(path.parent),
        "checkpoint": str(path),
        "input_shape": list(info.input_shape),
        "test_acc": checkpoint.metrics.get("test_acc"),
        "dataset_fingerprint": info.dataset_fingerprint,
    }
    report = evaluate(checkpoint.model, x, y, specs, eps_list, norm=norm, batch_size=batch_size, suite=suite,
                      checks=checks, probe_n=probe_n, progress=progress, model_meta=meta,
                      precision=precision)  # fmt: skip
    report.meta["data"] = {k: v for k, v in samples.source.items() if k != "from"}
    report.meta["data"]["source"] = samples.source.get("from")
    report.meta["eps_given"] = eps is not None
    report.meta["checks"] = checks
    report.meta["probe_n"] = probe_n if checks else 0
    return report
