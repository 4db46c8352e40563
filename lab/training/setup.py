"""What a run is built from, before its first step: the device (and its speed flags), the
data on the device, the model with its training defense or denoiser, and the optimizer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from defenses import CollapseGuard, Defense, build_defense, build_guard
from defenses.denoisers import wrap
from defenses.denoisers.training import DenoiserTraining
from defenses.detectors.magnet import autoencoder_of
from defenses.detectors.saved import GuardedModel, guard_classifier
from lab.core.distributed import Dist, join
from lab.core.errors import LabError
from lab.core.io import file_sha256
from lab.core.runtime import pick_dtype, seed_everything, set_threads
from lab.data import Dataset, load_dataset
from lab.data.device import DeviceData
from lab.data.pixels import to_float
from lab.models import LabModel, ModelInfo, build_model
from lab.training.checkpoint import load_model
from lab.training.config import RunConfig
from lab.training.recipes import load_classifier


def training_device(device_name: str, dd: Dist) -> torch.device:
    """The device this process trains on (``cuda:LOCAL_RANK`` under ``torchrun``), with the
    CUDA speed flags set: cuDNN autotuning and TF32 matmuls/convolutions."""
    device = join(dd, device_name)
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return device


def _subset(x: np.ndarray, y: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    return (x[:n], y[:n]) if n else (x, y)


def load_data(cfg: RunConfig, device: torch.device) -> tuple[Dataset, DeviceData, DeviceData]:
    """The recipe's dataset and its train / test splits (``data.*_subset`` first images) on ``device``."""
    ds = load_dataset(cfg.data.dataset, cfg.data.data_dir or None)
    train_data = DeviceData(*_subset(ds.train_x, ds.train_y, cfg.data.train_subset), device)
    test_data = DeviceData(*_subset(ds.test_x, ds.test_y, cfg.data.test_subset), device)
    return ds, train_data, test_data


def model_info(cfg: RunConfig, ds: Dataset) -> ModelInfo:
    """The metadata of the model the recipe trains on ``ds``."""
    return ModelInfo(
        arch=cfg.model.arch,
        dataset=ds.name,
        input_shape=tuple(ds.input_shape),  # type: ignore[arg-type]
        class_names=tuple(ds.class_names),
        mean=tuple(ds.mean),
        std=tuple(ds.std),
        dataset_fingerprint=ds.fingerprint,
    )


def model_and_defense(cfg: RunConfig, info: ModelInfo, train_data: DeviceData, dtype: torch.dtype | None,
                      ) -> tuple[LabModel, Defense | DenoiserTraining, CollapseGuard | None]:  # fmt: skip
    """The model to train and what gives each step its loss: a denoiser in front of a frozen,
    already trained classifier, or a new model with the recipe's training defense and its
    catastrophic-overfitting guard (None when the defense has none)."""
    defense: Defense | DenoiserTraining
    guard: CollapseGuard | None = None
    if cfg.denoiser["name"]:  # a denoiser in front of a frozen, already trained classifier
        classifier, classifier_record = load_classifier(cfg.denoiser["classifier"], info)
        denoised = wrap(classifier, cfg.denoiser["name"], cfg.denoiser_settings, classifier_record, copy=False)
        defense = DenoiserTraining(denoised.denoiser, dtype=dtype)
        model: LabModel = denoised
    else:
        model = build_model(info)
        defense = recipe_defense(cfg, info, dtype)
        guard = build_guard(defense, train_data, cfg.seed)
    return model, defense, guard


def recipe_defense(cfg: RunConfig, info: ModelInfo, dtype: torch.dtype | None) -> Defense:
    """The recipe's training defense (``defense.name = "none"``: standard training)."""
    return build_defense(cfg.defense["name"], cfg.defense_settings, input_shape=info.input_shape, dtype=dtype,
                         label_smoothing=cfg.train.label_smoothing)  # fmt: skip


def guarded(cfg: RunConfig, info: ModelInfo, ds: Dataset, device: torch.device) -> GuardedModel:
    """A ``[detector]`` recipe's model: the classifier run it names guarded by the detector, fitted
    on the first ``fit_n`` training images, its threshold set for ``fpr`` on the last ``calib_n``
    test images (the images ``lab detect`` uses, so it judges the saved model as it would judge
    the detector built on the spot); MagNet's autoencoder taken from the DAE run ``autoencoder``."""
    d = cfg.detector
    classifier, classifier_record = load_classifier(d["classifier"], info)
    classifier = classifier.to(device)
    autoencoder = None
    provenance: dict[str, Any] = {}
    if d["autoencoder"]:
        dae = load_model(d["autoencoder"], device)
        autoencoder = autoencoder_of(dae.model, f"detector.autoencoder {d['autoencoder']!r}")
        provenance["autoencoder"] = {"run": str(d["autoencoder"]), "weights_sha256": file_sha256(dae.path)}
    try:
        start = ds.held_out_start(int(d["calib_n"]))
    except LabError as exc:
        raise LabError(f"detector.calib_n: {exc}") from None
    fit_n = min(int(d["fit_n"]), len(ds.train_y))
    provenance["fit"] = {"split": "train", "index_start": 0, "index_stop": fit_n}
    provenance["calibration"] = {"split": "test", "index_start": start, "index_stop": len(ds.test_y)}
    x_fit = to_float(ds.train_x[:fit_n], device)
    y_fit = torch.from_numpy(ds.train_y[:fit_n].astype("int64")).to(device)
    return guard_classifier(classifier, d["name"], cfg.detector_settings, x_fit=x_fit, y_fit=y_fit,
                            x_calib=to_float(ds.test_x[start:], device), fpr=float(d["fpr"]),
                            autoencoder=autoencoder, classifier_record=classifier_record, provenance=provenance)  # fmt: skip


def place(model: LabModel, device: torch.device, channels_last: bool) -> LabModel:
    """``model`` on ``device``, in channels_last memory format when asked."""
    model = model.to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    return model


def make_optimizer(cfg: RunConfig, model: nn.Module) -> torch.optim.Optimizer:
    """SGD (momentum, Nesterov), Adam or AdamW over the trainable parameters; no weight decay
    on biases and normalization parameters (standard practice)."""
    t = cfg.train
    # Frozen parameters (a denoiser's classifier) are not optimized.
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": t.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if t.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=t.lr, momentum=t.momentum, nesterov=t.nesterov and t.momentum > 0)
    if t.optimizer == "adam":
        return torch.optim.Adam(groups, lr=t.lr)
    return torch.optim.AdamW(groups, lr=t.lr)


@dataclass
class Prepared:
    """Everything a run trains with, built in the order the seeds expect."""

    device: torch.device
    dtype: torch.dtype | None  # the autocast dtype (None: fp32)
    ds: Dataset
    train_data: DeviceData
    test_data: DeviceData
    model: LabModel
    defense: Defense | DenoiserTraining
    guard: CollapseGuard | None
    opt: torch.optim.Optimizer


def prepare(cfg: RunConfig, dd: Dist) -> Prepared:
    """Threads, device, precision and seed, then the data, the model with its defense (placed
    on the device) and the optimizer: what :func:`lab.training.loop.train` (and the profile in
    ``benchmarks/profile_robust.py``) start from."""
    set_threads(cfg.runtime.threads)
    device = training_device(cfg.runtime.device, dd)
    dtype = pick_dtype(cfg.runtime.precision, device)
    seed_everything(cfg.seed)
    ds, train_data, test_data = load_data(cfg, device)
    info = model_info(cfg, ds)
    if cfg.detector["name"]:  # a detector fitted in front of a trained classifier: nothing trains
        model: LabModel = guarded(cfg, info, ds, device)
        defense: Defense | DenoiserTraining = recipe_defense(cfg, info, dtype)
        guard: CollapseGuard | None = None
    else:
        model, defense, guard = model_and_defense(cfg, info, train_data, dtype)
    model = place(model, device, cfg.runtime.channels_last)
    return Prepared(device, dtype, ds, train_data, test_data, model, defense, guard, make_optimizer(cfg, model))
