"""Judge a detector protecting a saved model on its own test set: what ``lab detect`` calls.

The evaluated images are the first ``n`` test images from ``offset``; the threshold is calibrated
on the last ``calib_n`` test images, which must not overlap them; a detector that learns
(Mahalanobis) is fitted on the first ``fit_n`` training images. MagNet takes its autoencoder from
a DAE run (``autoencoder``: a ``[denoiser] name = "dae"`` run folder).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from defenses.denoisers import Denoised
from defenses.detectors import DETECTORS, build_detector
from lab.core.epsilon import check_eps, default_eps
from lab.core.errors import LabError
from lab.data import load_dataset
from lab.data.pixels import to_float
from lab.evaluation.detection import DetectionReport, evaluate_detection
from lab.runs.certify import model_meta
from lab.runs.samples import from_test_set
from lab.training.checkpoint import Checkpoint, load_model


def check_request(detector: str, eps: Sequence[float] | None, fpr: float) -> None:
    """LabError for an unknown detector, a radius out of range or a false-positive rate outside (0, 1)."""
    DETECTORS.get(detector)
    if eps is not None:
        check_eps(list(eps), "linf")
    if not 0 < fpr < 1:
        raise LabError(f"the false-positive rate must be in (0, 1), got {fpr}")


def detect_checkpoint(checkpoint: Checkpoint, detector: str, *, settings: Mapping[str, Any] | None = None,
                      autoencoder: str | os.PathLike[str] | None = None, eps: Sequence[float] | None = None,
                      n: int = 500, offset: int = 0, calib_n: int = 1000, fit_n: int = 10_000, fpr: float = 0.05,
                      steps: int = 100, restarts: int = 1, batch_size: int = 250,
                      data_dir: str | os.PathLike[str] | None = None, progress: bool = True) -> DetectionReport:  # fmt: skip
    """:func:`lab.evaluation.detection.evaluate_detection` of ``detector`` (with ``settings``) in
    front of ``checkpoint``'s model; see the module docstring for the images each step uses."""
    check_request(detector, eps, fpr)
    model = checkpoint.model
    if isinstance(model, Denoised):
        raise LabError("lab detect protects a plain classifier; this run is a denoised model (use its classifier run)")
    parts: dict[str, Any] = {}
    if detector == "magnet":
        if autoencoder is None:
            raise LabError("the magnet detector needs --autoencoder RUN, a DAE run (e.g. runs/demo_dae)")
        dae = load_model(autoencoder, next(model.parameters()).device).model
        if not isinstance(dae, Denoised) or not hasattr(dae.denoiser, "detector_score"):
            raise LabError(f"{str(autoencoder)!r} is not a DAE run (its model has no autoencoder)")
        parts["autoencoder"] = dae.denoiser
    det = build_detector(detector, settings, **parts)
    eps_list = list(eps) if eps is not None else [default_eps(checkpoint.info, "linf")]
    samples = from_test_set(checkpoint.info, n, offset, data_dir)
    ds = load_dataset(checkpoint.info.dataset, data_dir)
    total = len(ds.test_y)
    if calib_n < 1 or offset + n > total - calib_n:
        raise LabError(f"the threshold is calibrated on the last {calib_n} test images ({total - calib_n}.."
                       f"{total - 1}), which the evaluated images {offset}..{offset + n - 1} must not reach")  # fmt: skip
    device = next(model.parameters()).device
    x = to_float(samples.x, device)
    assert samples.y is not None
    y = torch.from_numpy(samples.y).to(device)
    x_calib = to_float(ds.test_x[total - calib_n:], device)
    det.to(device)
    if fit_n > 0:
        fx = to_float(ds.train_x[:fit_n], device)
        det.fit(model, fx, torch.from_numpy(ds.train_y[:fit_n].astype("int64")).to(device))
    report = evaluate_detection(model, det, x, y, eps_list, x_calib=x_calib, fpr=fpr, steps=steps, restarts=restarts,
                                batch_size=batch_size, progress=progress, model_meta=model_meta(checkpoint))  # fmt: skip
    report.meta["data"] = {k: v for k, v in samples.source.items() if k != "from"}
    report.meta["calibration"] = {"split": "test", "index_start": total - calib_n, "index_stop": total}
    report.meta["fit"] = {"split": "train", "index_start": 0, "index_stop": fit_n}
    if autoencoder is not None:
        report.meta["autoencoder"] = str(autoencoder)
    return report


def default_detect_dir(checkpoint: Checkpoint, detector: str) -> Path:
    """``RUN/detect/<detector>`` next to the checkpoint."""
    return Path(checkpoint.path).parent / "detect" / detector
