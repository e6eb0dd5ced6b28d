"""The raw data sets: pixels in [0, 1] (NCHW) and integer labels, before any subset is taken.

=================  =================================================  ==============  =======
name               files (under the data directory)                   train / test    shape
=================  =================================================  ==============  =======
``mnist``          ``mnist/{train,t10k}-{images-idx3,labels-idx1}``   60000 / 10000   1x28x28
``fashion-mnist``  ``fashion-mnist/...`` (same layout)                60000 / 10000   1x28x28
``cifar10``        ``cifar10/cifar10_lossless_subset.npz`` (exact)    4000 / 1000     3x32x32
``cifar10-jpeg``   ``cifar10/cifar10_jpeg_lossy_subset.npz`` (LOSSY)  10000 / 2000    3x32x32
``digits``         scikit-learn's ``load_digits`` (bundled with it)   1197 / 600      1x8x8
=================  =================================================  ==============  =======

``digits`` has no official split: its first 1197 images (in scikit-learn's order) are the
training pool and the last 600 the test pool.  ``cifar10-jpeg`` holds decoded JPEG copies
(about 1% pixel noise); it is only used when asked for by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from widenets.data.files import read_idx, read_npz, require

MNIST_CLASSES = tuple(str(d) for d in range(10))
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot")
DIGITS_TRAIN_POOL = 1197


@dataclass(frozen=True)
class RawData:
    """Training and test pools: images ``(n, C, H, W)`` as stored (uint8 views, not yet
    converted: MNIST's training pool would be 376 MB in float64), labels int64, and the
    divisor ``scale`` that maps pixel values to [0, 1]."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    scale: float


def _idx_set(directory: Path, origin: str, folder: str, label: str,
             class_names: tuple[str, ...]) -> RawData:
    arrays = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        for kind, stem in (("x", "images-idx3"), ("y", "labels-idx1")):
            relative = f"{folder}/{prefix}-{stem}-ubyte.gz"
            what = f"{label} {split} {'images' if kind == 'x' else 'labels'}, gzipped IDX"
            arrays[f"{kind}_{split}"] = read_idx(require(directory, origin, relative, what))
    return RawData(
        x_train=arrays["x_train"][:, None], y_train=arrays["y_train"].astype(np.int64),
        x_test=arrays["x_test"][:, None], y_test=arrays["y_test"].astype(np.int64),
        class_names=class_names, scale=255.0)


def _cifar(directory: Path, origin: str, relative: str, what: str) -> RawData:
    data = read_npz(require(directory, origin, relative, what))

    # stored NHWC (RGB); a transposed view is NCHW
    return RawData(x_train=data["x_train"].transpose(0, 3, 1, 2),
                   y_train=data["y_train"].astype(np.int64),
                   x_test=data["x_test"].transpose(0, 3, 1, 2),
                   y_test=data["y_test"].astype(np.int64),
                   class_names=tuple(str(c) for c in data["class_names"]), scale=255.0)


def _digits() -> RawData:
    from sklearn.datasets import load_digits  # optional dependency, imported when asked for

    bunch = load_digits()
    x = bunch.images[:, None]  # values 0..16
    y = bunch.target.astype(np.int64)
    cut = DIGITS_TRAIN_POOL
    return RawData(x_train=x[:cut], y_train=y[:cut], x_test=x[cut:], y_test=y[cut:],
                   class_names=tuple(str(d) for d in range(10)), scale=16.0)


def raw_data(name: str, directory: Path | None, origin: str) -> RawData:
    """The pools of data set ``name`` (one of :data:`NAMES`, already validated)."""
    if name == "digits":
        return _digits()
    if name == "mnist":
        return _idx_set(directory, origin, "mnist", "MNIST", MNIST_CLASSES)
    if name == "fashion-mnist":
        return _idx_set(directory, origin, "fashion-mnist", "Fashion-MNIST", FASHION_CLASSES)
    if name == "cifar10":
        return _cifar(directory, origin, "cifar10/cifar10_lossless_subset.npz",
                      "CIFAR-10 lossless subset, 4000 train + 1000 test images")
    return _cifar(directory, origin, "cifar10/cifar10_jpeg_lossy_subset.npz",
                  "CIFAR-10 lossy JPEG subset, 10000 train + 2000 test images")


NAMES = ("mnist", "fashion-mnist", "cifar10", "cifar10-jpeg", "digits")
ALIASES = {"fashion_mnist": "fashion-mnist", "fmnist": "fashion-mnist",
           "fashionmnist": "fashion-mnist", "cifar-10": "cifar10", "cifar10_jpeg": "cifar10-jpeg"}
