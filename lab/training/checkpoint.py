"""Checkpoints: safetensors weights that describe themselves, plus a JSON sidecar.

A run directory holds:

* ``model.safetensors``: the weights. Its header metadata carries the whole record
  (architecture, dataset and fingerprint, input shape, class names, normalization,
  resolved config, metrics, versions, git commit, seed) and a SHA-256 over the tensors,
  so the one file is complete, self-verifying and written atomically.
* ``model.json``: the same record for people and tools, plus the file's SHA-256.
* ``train_state.safetensors``: weights, optimizer state, RNG state and progress of the
  last completed epoch (written atomically), for ``lab train --resume``.

Nothing here ever unpickles: a ``.pt``/``.pth``/pickle file is refused with a sentence
saying why.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from defenses.denoisers import rebuild
from defenses.detectors.saved import rebuild as rebuild_guarded
from lab.core.errors import CheckpointError, LabError
from lab.core.io import atomic_write_bytes, atomic_write_json, file_sha256
from lab.models import LabModel, ModelInfo, build_model

log = logging.getLogger(__name__)

FORMAT = "lab-checkpoint"
FORMAT_VERSION = 1
MODEL_FILE = "model.safetensors"
SIDECAR_FILE = "model.json"
STATE_FILE = "train_state.safetensors"
_META_KEY = "lab"
_DIGEST_KEY = "tensors_sha256"


def tensors_digest(tensors: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 over the tensors' names, dtypes, shapes and bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def save_tensors(path: Path, tensors: Mapping[str, torch.Tensor], record: Mapping[str, Any]) -> str:
    """Write ``tensors`` with ``record`` (JSON) in the header, atomically; return the file's sha256."""
    cpu = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    meta = {_META_KEY: json.dumps(record, sort_keys=True), _DIGEST_KEY: tensors_digest(cpu)}
    blob = st_save(cpu, metadata=meta)
    atomic_write_bytes(path, blob)
    return hashlib.sha256(blob).hexdigest()


def _looks_like_pickle(head: bytes) -> bool:
    # torch.save zip archives start with PK; raw pickles with the PROTO opcode 0x80.
    return head.startswith(b"PK\x03\x04") or (len(head) >= 2 and head[0] == 0x80 and head[1] <= 5)


def load_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read and verify a lab safetensors file: ``(tensors, record)``; CheckpointError otherwise."""
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint file {str(path)!r} does not exist") from None
    except OSError as exc:
        raise CheckpointError(f"checkpoint file {str(path)!r} cannot be read: {exc.strerror}") from None
    if _looks_like_pickle(blob[:4]):
        raise CheckpointError(
            f"{str(path)!r} is a pickle (torch.save) file; the lab never unpickles files because "
            "that can run arbitrary code: save the weights with safetensors instead"
        )
    try:
        tensors = st_load(blob)
        header_len = int.from_bytes(blob[:8], "little")
        header = json.loads(blob[8 : 8 + header_len])
    except (SafetensorError, ValueError, UnicodeDecodeError) as exc:
        raise CheckpointError(
            f"{str(path)!r} is not a readable safetensors file (truncated or corrupt: {exc})"
        ) from None
    meta = header.get("__metadata__") or {}
    if _META_KEY not in meta or _DIGEST_KEY not in meta:
        raise CheckpointError(
            f"{str(path)!r} is a safetensors file but not a lab checkpoint (no lab metadata); "
            "import foreign weights through the Python API"
        )
    if tensors_digest(tensors) != meta[_DIGEST_KEY]:
        raise CheckpointError(f"{str(path)!r} is corrupt: its tensors do not match their checksum")
    try:
        record = json.loads(meta[_META_KEY])
    except json.JSONDecodeError:
        raise CheckpointError(f"{str(path)!r} has unreadable lab metadata") from None
    return tensors, record


@dataclass
class Checkpoint:
    """A loaded checkpoint: the model (eval mode, on ``device``) and its record."""

    model: LabModel
    record: dict[str, Any]
    path: Path

    @property
    def info(self) -> ModelInfo:
        return self.model.info

    @property
    def metrics(self) -> dict[str, Any]:
        return dict(self.record.get("metrics", {}))


def model_record(model: LabModel, **fields: Any) -> dict[str, Any]:
    """The record stored with the weights: format, model info and the caller's fields."""
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "model": model.info.to_dict(), **fields}


def save_model(run_dir: str | os.PathLike[str], model: LabModel, **fields: Any) -> Path:
    """Write ``model.safetensors`` then ``model.json`` into ``run_dir``; both atomic."""
    out = Path(run_dir)
    record = model_record(model, **fields)
    weights = out / MODEL_FILE
    sha = save_tensors(weights, model.state_dict(), record)
    sidecar = dict(record, weights={"file": MODEL_FILE, "sha256": sha, "bytes": weights.stat().st_size})
    atomic_write_json(out / SIDECAR_FILE, sidecar)
    return weights


def resolve_model_path(path: str | os.PathLike[str]) -> Path:
    """A run folder, its ``model.json`` or its ``model.safetensors`` -> the weights file."""
    p = Path(path)
    if p.is_dir():
        p = p / MODEL_FILE
        if not p.exists():
            raise CheckpointError(f"{str(p.parent)!r} holds no {MODEL_FILE}; is it a lab run folder?")
    elif p.name == SIDECAR_FILE:
        p = p.with_name(MODEL_FILE)
    if not p.exists():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    return p


def build_from_record(record: Mapping[str, Any], where: str) -> LabModel:
    if record.get("format") != FORMAT:
        raise CheckpointError(f"{where} is not a lab checkpoint (format {record.get('format')!r})")
    try:
        info = ModelInfo.from_dict(record["model"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{where} has incomplete model metadata ({exc})") from None
    if "detector" in info.extra:  # a detector guarding a classifier (defenses.detectors.saved)
        try:
            return rebuild_guarded(info, build_model)
        except LabError as exc:
            raise CheckpointError(f"{where} holds a guarded model that cannot be rebuilt: {exc}") from None
    if "denoiser" in info.extra:  # a denoiser in front of a classifier (defenses.denoisers)
        try:
            return rebuild(info, build_model)
        except LabError as exc:
            raise CheckpointError(f"{where} holds a denoised model that cannot be rebuilt: {exc}") from None
    return build_model(info)


def load_state_into(model: torch.nn.Module, tensors: Mapping[str, torch.Tensor], where: str) -> None:
    """Load weights, turning a key or shape mismatch into one CheckpointError sentence."""
    own = model.state_dict()
    missing = sorted(set(own) - set(tensors))
    unexpected = sorted(set(tensors) - set(own))
    shapes = [k for k in own if k in tensors and tuple(own[k].shape) != tuple(tensors[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:3])}")
        if unexpected:
            parts.append(f"unexpected {', '.join(unexpected[:3])}")
        if shapes:
            parts.append(f"shape mismatch in {', '.join(shapes[:3])}")
        arch = getattr(getattr(model, "info", None), "arch", type(model).__name__)
        raise CheckpointError(f"{where} does not hold weights for architecture {arch!r} ({'; '.join(parts)})")
    model.load_state_dict(dict(tensors))


def load_model(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> Checkpoint:
    """Load and verify a checkpoint; the model comes back in eval mode on ``device``."""
    weights = resolve_model_path(path)
    tensors, record = load_tensors(weights)
    model = build_from_record(record, repr(str(weights)))
    load_state_into(model, tensors, repr(str(weights)))
    sidecar = weights.with_name(SIDECAR_FILE)
    if sidecar.exists():
        try:
            side = json.loads(sidecar.read_text(encoding="utf-8"))
            if side.get("weights", {}).get("sha256") != file_sha256(weights):
                log.warning("%s is out of date with %s; using the metadata inside the weights", sidecar, weights)
        except (OSError, json.JSONDecodeError):
            log.warning("%s is unreadable; using the metadata inside the weights", sidecar)
    return Checkpoint(model=model.to(device).eval(), record=record, path=weights)


def list_checkpoints(root: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every ``model.safetensors`` under ``root``: a summary row each, unreadable ones flagged.

    Reads only the sidecar (cheap); falls back to the weights' header when it is missing.
    """
    rows: list[dict[str, Any]] = []
    base = Path(root)
    if not base.exists():
        raise CheckpointError(f"folder {str(base)!r} does not exist")
    for weights in sorted(base.rglob(MODEL_FILE)):
        row: dict[str, Any] = {"path": str(weights.parent)}
        try:
            side = weights.with_name(SIDECAR_FILE)
            if side.exists():
                record = json.loads(side.read_text(encoding="utf-8"))
            else:
                record = load_tensors(weights)[1]
            if record.get("format") != FORMAT:
                raise CheckpointError("not a lab checkpoint")
            row.update(
                arch=record["model"]["arch"],
                dataset=record["model"]["dataset"],
                status=record.get("status", "complete"),
                epochs=record.get("training", {}).get("epochs_completed"),
                metrics=record.get("metrics", {}),
                defense=record.get("defense"),
                weights_sha256=(record.get("weights") or {}).get("sha256"),  # the sidecar's; None without one
            )
        except (CheckpointError, OSError, KeyError, TypeError, json.JSONDecodeError) as exc:
            row.update(error=f"unreadable: {exc}")
        rows.append(row)
    return rows
