"""Datasets for the lab: MNIST, Fashion-MNIST, CIFAR-10 and user image folders, verified.

>>> ds = load_dataset("fashion-mnist")          # doctest: +SKIP
>>> ds.train_x.shape, ds.train_x.dtype, ds.source  # doctest: +SKIP
((60000, 1, 28, 28), dtype('uint8'), 'system /usr/share/datasets/fashion-mnist')

Arrays are numpy uint8 [N, C, H, W] images and int64 [N] labels; :mod:`lab.data.device`
moves them to the training device. Every file is checksum-verified before it is parsed,
pickles are only unpickled (restricted to numpy arrays) after their checksum matched, and
every built-in dataset must reproduce its known content fingerprint, from any source.
See :mod:`lab.data.loader` for the order in which sources are tried.
"""

from __future__ import annotations

from lab.data.cache import cache_dir
from lab.data.dataset import Dataset, fingerprint
from lab.data.loader import DATASET_NAMES, dataset_info, load_dataset

__all__ = ["DATASET_NAMES", "Dataset", "cache_dir", "dataset_info", "fingerprint", "load_dataset"]
