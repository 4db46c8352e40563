"""Certify a saved model on its own test set: what ``lab certify`` and ``lab eval --certify`` call
(bound propagation for L-inf, randomized smoothing for L2).

:func:`certify_checkpoint` takes the first ``n`` test images from ``offset`` (verified to be the
data the model was trained on, as :func:`lab.runs.evaluate.evaluate_plan` does) and runs
:func:`lab.evaluation.certify.certify`; the report records the model and the data indices, so a
robustness report on the same images can be compared with it image by image
(:func:`lab.evaluation.certify.sandwich_check`).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from defenses.detectors.saved import refuse_guarded
from lab.core.epsilon import check_eps, default_eps
from lab.core.errors import LabError
from lab.core.io import file_sha256
from lab.core.journal import Journal
from lab.data.pixels import to_float
from lab.evaluation.certify import CertificationReport, certify, check_method
from lab.evaluation.smoothing import certify_smoothed
from lab.models.bounds import METHODS as BOUND_METHODS
from lab.runs.samples import from_test_set
from lab.training.checkpoint import Checkpoint

#: the finished images of an interrupted ``lab certify --method smoothing``, in the report's folder
JOURNAL_FILE = "certification.partial.jsonl"
#: every way ``lab certify`` certifies: the L-inf bound methods, and randomized smoothing (L2)
CERT_METHODS: tuple[str, ...] = (*BOUND_METHODS, "smoothing")


def model_meta(checkpoint: Checkpoint) -> dict[str, Any]:
    """What a report says of the model it evaluated."""
    info, path = checkpoint.info, Path(checkpoint.path)
    return {"arch": info.arch, "dataset": info.dataset, "run": str(path.parent), "checkpoint": str(path),
            "input_shape": list(info.input_shape), "test_acc": checkpoint.metrics.get("test_acc"),
            "dataset_fingerprint": info.dataset_fingerprint}  # fmt: skip


def cert_norm(method: str) -> str:
    """The threat model a certification method certifies: L2 for smoothing, L-inf for the bounds."""
    return "l2" if method == "smoothing" else "linf"


def check_request(eps: Sequence[float] | None, method: str, norm: str | None = None) -> None:
    """LabError for a request the certifier cannot take, before any model is loaded: an unknown
    method, a threat model it does not certify, a radius out of range."""
    if method != "smoothing":
        check_method(method)
    want = cert_norm(method)
    if norm is not None and norm != want:
        if method == "smoothing":
            raise LabError("randomized smoothing certifies L2 balls; it cannot certify the linf threat model")
        raise LabError(f"the {method} bounds certify L-inf balls; for {norm} use --method smoothing (lab certify)")
    if eps is not None:
        check_eps(list(eps), want)


def smoothing_sigma(checkpoint: Checkpoint, sigma: float | None) -> float:
    """``sigma`` if given, else the noise the model was trained with (``[defense] name = "gaussian"``)."""
    if sigma is not None:
        return float(sigma)
    defense = checkpoint.record.get("defense") or {}
    if defense.get("name") == "gaussian":
        return float(defense["settings"]["sigma"])
    raise LabError("randomized smoothing needs --sigma (the model was not trained with Gaussian noise, "
                   "whose sigma it would use)")  # fmt: skip


def certify_checkpoint(checkpoint: Checkpoint, *, eps: Sequence[float] | None = None, method: str = "ibp",
                       n: int = 1000, offset: int = 0, batch_size: int = 100, max_rows: int = 4096,
                       sigma: float | None = None, n0: int = 100, n_samples: int = 10_000, alpha: float = 0.001,
                       data_dir: str | os.PathLike[str] | None = None, progress: bool = True,
                       resume_dir: str | os.PathLike[str] | None = None) -> CertificationReport:  # fmt: skip
    """Certified accuracy of ``checkpoint`` on test images ``offset .. offset+n-1`` at each radius
    of ``eps`` (default: the data's conventional radius) with ``method``: a bound method (L-inf)
    or ``smoothing`` (L2; ``sigma``, ``n0``, ``n_samples``, ``alpha`` as in
    :func:`lab.evaluation.smoothing.certify_smoothed`). Smoothing, minutes per hundred images,
    keeps each finished image in a journal in ``resume_dir`` (the report's folder): run again,
    the same request continues where it stopped (:func:`finish`, once the report is written)."""
    check_request(eps, method)
    refuse_guarded(checkpoint.model, "lab certify", str(Path(checkpoint.path).parent))
    norm = cert_norm(method)
    eps_list = list(eps) if eps is not None else [default_eps(checkpoint.info, norm)]
    noise = smoothing_sigma(checkpoint, sigma) if method == "smoothing" else 0.0
    samples = from_test_set(checkpoint.info, n, offset, data_dir)
    device = next(checkpoint.model.parameters()).device
    x = to_float(samples.x, device)
    assert samples.y is not None
    y = torch.from_numpy(samples.y).to(device)
    if method == "smoothing":
        request = {"method": method, "weights_sha256": file_sha256(checkpoint.path), "sigma": noise, "n0": n0,
                   "n_samples": n_samples, "alpha": alpha,
                   "data": {k: v for k, v in samples.source.items() if k != "from"}}  # fmt: skip
        journal = None if resume_dir is None else Journal(Path(resume_dir) / JOURNAL_FILE, request)
        done = {int(k): (int(v[0]), float(v[1])) for k, v in journal.done().items()} if journal else {}
        try:
            report = certify_smoothed(checkpoint.model, x, y, eps_list, sigma=noise, n0=n0, n=n_samples, alpha=alpha,
                                      batch=max(batch_size, 1), progress=progress, model_meta=model_meta(checkpoint),
                                      done=done, on_image=None if journal is None else functools.partial(_keep, journal))  # fmt: skip
        finally:
            if journal is not None:
                journal.close()
    else:
        report = certify(checkpoint.model, x, y, eps_list, method=method, batch_size=batch_size, max_rows=max_rows,
                         progress=progress, model_meta=model_meta(checkpoint))  # fmt: skip
    report.meta["data"] = {k: v for k, v in samples.source.items() if k != "from"}
    report.meta["data"]["source"] = samples.source.get("from")
    return report


def _keep(journal: Journal, i: int, c: int, r: float) -> None:
    journal.add(str(i), [c, r])


def finish(out_dir: str | os.PathLike[str]) -> None:
    """The report in ``out_dir`` is written: its journal of finished images goes."""
    Journal(Path(out_dir) / JOURNAL_FILE, {}).finish()


def default_cert_dir(checkpoint: Checkpoint, method: str) -> Path:
    """``RUN/certify/<method>-<norm>`` next to the checkpoint."""
    return Path(checkpoint.path).parent / "certify" / f"{method}-{cert_norm(method)}"
