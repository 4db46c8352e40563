"""Fixtures for the data tests: an isolated cache, and a tiny fake "fashion-mnist"."""

from __future__ import annotations

from pathlib import Path

import pytest
from lab_data_fakes import FakeDataset, idx_content_table, tiny_arrays, write_idx_set

from lab.data.dataset import fingerprint
from lab.data.known import IDX_SPECS, IdxSpec


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own empty cache folder and no LAB_DATA_DIR."""
    cache = tmp_path / "lab-cache"
    monkeypatch.setenv("LAB_CACHE_DIR", str(cache))
    monkeypatch.delenv("LAB_DATA_DIR", raising=False)
    return cache


@pytest.fixture
def fake_fmnist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeDataset:
    """Patch the known tables so that tiny IDX files verify as "fashion-mnist"."""
    arrays = tiny_arrays(seed=7)
    system_dir = tmp_path / "system" / "fashion-mnist"
    write_idx_set(system_dir, arrays)
    table = idx_content_table(arrays)
    fp = fingerprint(*arrays)
    specs = {**IDX_SPECS, "fashion-mnist": IdxSpec(content_sha256=table, gz_md5={})}
    monkeypatch.setattr("lab.data.folders.IDX_SPECS", specs)
    monkeypatch.setattr("lab.data.remote.IDX_SPECS", specs)
    monkeypatch.setattr("lab.data.loader.KNOWN_FINGERPRINTS", {"fashion-mnist": fp})
    monkeypatch.setattr("lab.data.loader.SYSTEM_DIRS", {"fashion-mnist": (str(system_dir),)})
    return FakeDataset(arrays, fp, system_dir, table)
