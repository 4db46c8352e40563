"""Cached loaders: models once per process (``st.cache_resource``), results once per input
(``st.cache_data``).

A model is cached under its path *and* a key made of the weights file's modification time,
size and SHA-256 (as its ``model.json`` records it), so a retrained or resumed run is loaded
afresh while an unchanged one is never loaded twice. Results are cached under everything
that changes them: the model key, the image's pixels, the label, the attack, its settings,
epsilon, norm and the explanation methods (a sweep's figures: :mod:`lab.dashboard.sweep_cache`,
kept apart so that the Playground does not import the sweep machinery). A LabError raised
inside is not cached.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from defenses.detectors.saved import GuardedModel
from lab.core.errors import LabError
from lab.core.runtime import pick_device
from lab.data import load_dataset
from lab.data.pixels import to_float
from lab.present.detection import detection_file, load_detection
from lab.runs.detect import Verdict, guard, guard_from_report, verdicts
from lab.runs.inside import InsideRun, inside_models
from lab.runs.playground import DefenseView, PlaygroundResult, defense_view, playground_step
from lab.runs.samples import from_test_set
from lab.training.checkpoint import (
    MODEL_FILE,
    SIDECAR_FILE,
    Checkpoint,
    list_checkpoints,
    load_model,
    resolve_model_path,
)


def model_key(path: str | os.PathLike[str]) -> str:
    """``path|mtime_ns|size|sha256``: changes whenever the weights file does."""
    weights = resolve_model_path(path)
    st_ = weights.stat()
    sha = ""
    side = weights.with_name(SIDECAR_FILE)
    try:
        sha = str((json.loads(side.read_text(encoding="utf-8")).get("weights") or {}).get("sha256") or "")
    except (OSError, json.JSONDecodeError, AttributeError):
        pass
    return f"{weights.resolve()}|{st_.st_mtime_ns}|{st_.st_size}|{sha}"


@st.cache_resource(max_entries=16, show_spinner="Loading the model…")
def _checkpoint(path: str, key: str, dev: str) -> Checkpoint:
    return load_model(path, dev)


@st.cache_resource(max_entries=16)
def model_lock(key: str) -> threading.Lock:
    """One lock per cached model: sessions share the model object, and an attack or an
    explainer briefly changes its mode and parameter flags (restoring them after)."""
    return threading.Lock()


def checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """The verified checkpoint at ``path`` (a run folder), loaded once while it is unchanged."""
    return _checkpoint(str(path), model_key(path), str(pick_device("auto")))


def checkpoints(root: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every checkpoint under the runs folder (lab.training.checkpoint.list_checkpoints; unreadable
    ones carry ``error``); empty when the folder does not exist yet."""
    if not Path(root).is_dir():
        return []
    return list_checkpoints(root)


@st.cache_data(max_entries=4, show_spinner="Loading the test set…")
def _test_set(path: str, key: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    info = checkpoint(path).info
    total = len(load_dataset(info.dataset).test_y)
    s = from_test_set(info, total, 0)  # verifies the data is the data the model was trained on
    assert s.y is not None
    return s.x, s.y, s.names


def test_set(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The model's whole test set: uint8 images [N, C, H, W], labels [N], names."""
    return _test_set(str(path), model_key(path))


def _items(settings: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(settings.items()))


@st.cache_data(max_entries=64, show_spinner=False)
def _playground(path: str, key: str, image: np.ndarray, label: int | None, attack: str,
                settings: tuple[tuple[str, Any], ...], eps: float, norm: str, methods: tuple[str, ...],
                quick: bool, name: str) -> PlaygroundResult:  # fmt: skip
    with model_lock(key):
        return playground_step(checkpoint(path), image, label, attack=attack, settings=dict(settings), eps=eps,
                               norm=norm, methods=methods, quick=quick, name=name)  # fmt: skip


def playground(path: str | os.PathLike[str], image: np.ndarray, label: int | None, *, attack: str,
               settings: Mapping[str, Any], eps: float, norm: str, methods: Sequence[str] = (), quick: bool = True,
               name: str = "image") -> PlaygroundResult:  # fmt: skip
    """:func:`lab.runs.playground.playground_step`, cached on everything that changes it."""
    return _playground(str(path), model_key(path), np.ascontiguousarray(image), label, attack, _items(settings),
                       float(eps), norm, tuple(methods), bool(quick), name)  # fmt: skip


@st.cache_data(max_entries=32, show_spinner=False)
def _defense(path: str, key: str, clean: np.ndarray, adversarial: np.ndarray, label: int | None, mode: str,
             attack: str, settings: tuple[tuple[str, Any], ...], eps: float, norm: str) -> DefenseView:  # fmt: skip
    ck = checkpoint(path)
    with model_lock(key):
        return defense_view(ck, ck.record, clean, adversarial, label, mode=mode, attack=attack,
                            settings=dict(settings), eps=eps, norm=norm)  # fmt: skip


def defense(path: str | os.PathLike[str], clean: np.ndarray, adversarial: np.ndarray, label: int | None, *,
            mode: str, attack: str, settings: Mapping[str, Any], eps: float, norm: str) -> DefenseView:  # fmt: skip
    """:func:`lab.runs.playground.defense_view` of the model at ``path``, cached."""
    return _defense(str(path), model_key(path), np.ascontiguousarray(clean), np.ascontiguousarray(adversarial), label,
                    mode, attack, _items(settings), float(eps), norm)  # fmt: skip


@st.cache_data(max_entries=32, show_spinner=False)
def _inside(path: str, key: str, image: np.ndarray, label: int | None, attack: str,
            settings: tuple[tuple[str, Any], ...], eps: float, norm: str, name: str) -> InsideRun:  # fmt: skip
    with model_lock(key):
        (run,) = inside_models([checkpoint(path)], image, label, attack=attack, settings=dict(settings), eps=eps,
                               norm=norm, names=[name])  # fmt: skip
    return run


def inside(path: str | os.PathLike[str], image: np.ndarray, label: int | None, *, attack: str,
           settings: Mapping[str, Any], eps: float, norm: str, name: str) -> InsideRun:  # fmt: skip
    """:func:`lab.runs.inside.inside_models` for the model at ``path`` (attacked on its own), cached."""
    return _inside(str(path), model_key(path), np.ascontiguousarray(image), label, attack, _items(settings),
                   float(eps), norm, name)  # fmt: skip


#: training images a learning detector (Mahalanobis) is fitted on in the dashboard (lab detect: 10,000)
DASHBOARD_FIT_N = 5000


@st.cache_resource(max_entries=8, show_spinner="Calibrating the detector on held-out clean images…")
def _guarded(path: str, key: str, detector: str, autoencoder: str | None, ae_key: str, fpr: float | None,
             report_key: str) -> Any:  # fmt: skip
    if fpr is None:
        rep = load_detection(path, detector)
        if rep is None:
            raise LabError(f"{path!r} has no lab detect report for {detector}: run lab detect --model {path} "
                           f"--detector {detector}")  # fmt: skip
        return guard_from_report(checkpoint(path), rep)
    return guard(checkpoint(path), detector, autoencoder=autoencoder, fpr=fpr, fit_n=DASHBOARD_FIT_N)


def detector_verdicts(path: str | os.PathLike[str], detector: str, images: np.ndarray, *,
                      autoencoder: str | os.PathLike[str] | None = None, fpr: float | None = 0.05) -> list[Verdict]:  # fmt: skip
    """:func:`lab.runs.detect.verdicts` of the model at ``path`` guarded by ``detector`` on ``images``
    [N, C, H, W] (uint8 or float in [0, 1]): its threshold calibrated for ``fpr`` on the last 1,000
    test images (once per model and detector), or with ``fpr`` None the guarded model ``lab detect``
    saved in its report (``RUN/detect/<detector>/detection.json``: its threshold, its autoencoder)."""
    ae = None if autoencoder is None else str(autoencoder)
    key = model_key(path)
    report = detection_file(path, detector)
    report_key = f"{report.stat().st_mtime_ns}" if fpr is None and report.is_file() else ""
    detected = _guarded(str(path), key, detector, ae, "" if ae is None else model_key(ae),
                        None if fpr is None else float(fpr), report_key)  # fmt: skip
    with model_lock(key):
        return verdicts(detected, to_float(np.asarray(images)))


def saved_detector_verdicts(run: str | os.PathLike[str], images: np.ndarray) -> list[Verdict]:
    """:func:`lab.runs.detect.verdicts` of a ``[detector]`` recipe's run (the guarded model it
    saved, with its threshold) on ``images`` [N, C, H, W] (uint8 or float in [0, 1])."""
    model = checkpoint(run).model
    if not isinstance(model, GuardedModel):
        raise LabError(f"{str(run)!r} is not a detector's run (a [detector] recipe's)")
    with model_lock(model_key(run)):
        return verdicts(model, to_float(np.asarray(images)))



def weights_exist(run: str | os.PathLike[str]) -> bool:
    return (Path(run) / MODEL_FILE).is_file()
