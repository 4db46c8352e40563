"""Checkpoints round-trip, verify themselves, refuse pickles and foreign weights."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from lab.core.errors import CheckpointError
from lab.core.io import atomic_open, atomic_write_bytes
from lab.models import LabModel, ModelInfo, build_model
from lab.training import checkpoint as ckpt


def model(arch: str = "smallcnn", seed: int = 0) -> LabModel:
    torch.manual_seed(seed)
    info = ModelInfo(arch, "mnist", (1, 28, 28), tuple("0123456789"), (0.13,), (0.31,), "f" * 64)
    return build_model(info)


@pytest.fixture
def saved(tmp_path: Path) -> tuple[Path, LabModel]:
    m = model()
    ckpt.save_model(tmp_path, m, config={"seed": 0}, metrics={"test_acc": 0.5}, status="complete", seed=0)
    return tmp_path, m


def test_round_trip(saved: tuple[Path, LabModel]) -> None:
    run, m = saved
    loaded = ckpt.load_model(run)
    assert loaded.info == m.info
    assert not loaded.model.training
    x = torch.rand(4, 1, 28, 28)
    torch.testing.assert_close(loaded.model(x), m.eval()(x), rtol=0, atol=0)
    side = json.loads((run / "model.json").read_text())
    assert side["model"]["arch"] == "smallcnn" and side["metrics"]["test_acc"] == 0.5
    assert len(side["weights"]["sha256"]) == 64
    # the weights file alone is complete: same record without the sidecar
    (run / "model.json").unlink()
    assert ckpt.load_model(run / "model.safetensors").record["metrics"] == {"test_acc": 0.5}


def test_refuses_a_torch_save_pickle(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    torch.save(model().state_dict(), path)
    with pytest.raises(CheckpointError, match="is a pickle .*never unpickles"):
        ckpt.load_model(path)


def test_refuses_a_raw_pickle(tmp_path: Path) -> None:
    path = tmp_path / "weights.pt"
    path.write_bytes(pickle.dumps({"w": [1, 2, 3]}))
    with pytest.raises(CheckpointError, match="is a pickle"):
        ckpt.load_model(path)


def test_truncated_file(saved: tuple[Path, LabModel]) -> None:
    run, _ = saved
    path = run / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        ckpt.load_model(run)


def test_flipped_bytes_are_caught(saved: tuple[Path, LabModel]) -> None:
    run, _ = saved
    path = run / "model.safetensors"
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="is corrupt: its tensors do not match their checksum"):
        ckpt.load_model(run)


def test_foreign_safetensors_without_lab_metadata(tmp_path: Path) -> None:
    save_file({k: v.contiguous() for k, v in model().state_dict().items()}, str(tmp_path / "model.safetensors"))
    with pytest.raises(CheckpointError, match="not a lab checkpoint"):
        ckpt.load_model(tmp_path)


def test_weights_of_another_architecture(tmp_path: Path) -> None:
    other = model("lenet5")
    record = ckpt.model_record(model("smallcnn"))  # claims smallcnn, holds lenet5 weights
    ckpt.save_tensors(tmp_path / "model.safetensors", other.state_dict(), record)
    with pytest.raises(CheckpointError, match="does not hold weights for architecture 'smallcnn'"):
        ckpt.load_model(tmp_path)


def test_missing_paths(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        ckpt.load_model(tmp_path / "nope")
    with pytest.raises(CheckpointError, match="holds no model.safetensors"):
        ckpt.load_model(tmp_path)


def test_stale_sidecar_is_a_warning_not_a_failure(saved: tuple[Path, LabModel], caplog) -> None:
    run, m = saved
    ckpt.save_tensors(run / "model.safetensors", model(seed=3).state_dict(), ckpt.model_record(m))
    loaded = ckpt.load_model(run)  # model.json now describes the previous weights
    assert loaded.model is not None
    assert "out of date" in caplog.text


def test_listing_flags_unreadable_runs(saved: tuple[Path, LabModel], tmp_path: Path) -> None:
    run, _ = saved
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.safetensors").write_bytes(b"garbage")
    rows = {Path(r["path"]).name: r for r in ckpt.list_checkpoints(tmp_path)}
    assert rows[run.name]["arch"] == "smallcnn" and rows[run.name]["metrics"]["test_acc"] == 0.5
    assert rows["broken"]["error"].startswith("unreadable")


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "f.bin"
    atomic_write_bytes(target, b"old")
    with pytest.raises(RuntimeError):
        with atomic_open(target, "wb") as fh:
            fh.write(b"half-written")
            raise RuntimeError("crash while writing")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]  # no temp file left
