"""``widenets.data.load``: deterministic, class-balanced subsets of the bundled data sets."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import torch

from widenets.data.files import find_data_dir
from widenets.data.preprocess import preprocess
from widenets.data.sources import ALIASES, NAMES, raw_data
from widenets.errors import HyperparameterError, expected


@dataclasses.dataclass(frozen=True, repr=False)
class Dataset:
    """A training and a test set with their provenance.

    Attributes
    ----------
    x_train, x_test : Tensor, float64
        Images ``(n, C, H, W)`` (NCHW), or ``(n, C*H*W)`` when loaded with ``flatten=True``.
    y_train, y_test : Tensor, int64, shape ``(n,)``
        Class labels in ``0 .. n_classes - 1``.
    n_classes : int
    name : str
        Canonical name of the data set (``"mnist"``, ``"fashion-mnist"``, ``"cifar10"``, ...).
    preprocessing : str
        What was done to the pixels, with the fitted statistics.
    class_names : tuple of str
    train_index, test_index : Tensor, int64
        Position of each example in its pool (the official order of the source files).
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int
    name: str
    preprocessing: str
    class_names: tuple[str, ...]
    train_index: torch.Tensor
    test_index: torch.Tensor

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}, x_train={tuple(self.x_train.shape)}, "
                f"x_test={tuple(self.x_test.shape)}, n_classes={self.n_classes}, "
                f"preprocessing={self.preprocessing!r})")

    def one_hot(self, split: str = "train", *, centre: float = 0.0) -> torch.Tensor:
        """One-hot float64 targets ``(n, n_classes)`` minus ``centre`` (Arora et al. 2019)."""
        if split not in ("train", "test"):
            raise HyperparameterError(expected("split", "'train' or 'test'", repr(split)))
        y = self.y_train if split == "train" else self.y_test
        return torch.nn.functional.one_hot(y, self.n_classes).to(torch.float64) - centre


def balanced_indices(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """The first ``n`` of a round-robin order over classes, each class shuffled by ``seed``.

    Class counts differ by at most one (until a class runs out, after which the others take
    its turns), and the subset for ``n`` is a prefix of the subset for any larger ``n``.
    """
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    queues = [rng.permutation(np.flatnonzero(labels == c)) for c in classes]
    longest = max(len(q) for q in queues)
    order = [q[r] for r in range(longest) for q in queues if r < len(q)]
    return np.asarray(order[:n], dtype=np.int64)


def _check_count(name: str, value, available: int, dataset: str) -> int:
    if value is None:
        return available
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise HyperparameterError(expected(name, "a positive int or None", repr(value)))
    if value > available:
        raise HyperparameterError(expected(name, f"at most {available} for {dataset!r} (the "
                                           "size of its pool)", value))
    return int(value)


def _pool(x: np.ndarray, factor) -> np.ndarray:
    if isinstance(factor, bool) or not isinstance(factor, int | np.integer) or factor < 1:
        raise HyperparameterError(expected("downsample", "a positive int", repr(factor)))
    if factor == 1:
        return x
    n, c, h, w = x.shape
    if h % factor or w % factor:
        raise HyperparameterError(expected("downsample", f"a divisor of the image size {h}x{w}",
                                           factor))
    return x.reshape(n, c, h // factor, factor, w // factor, factor).mean(axis=(3, 5))


def load(name: str, n_train: int | None = None, n_test: int | None = None, *,
         data_dir: str | os.PathLike | None = None, preprocessing: str = "standardize",
         seed: int = 0, flatten: bool = False, zca_reg: float = 0.1,
         downsample: int = 1) -> Dataset:
    """Load a class-balanced subset of a bundled data set, preprocessed (never downloads).

    Parameters
    ----------
    name : {"mnist", "fashion-mnist", "cifar10", "cifar10-jpeg", "digits"}
        ``cifar10`` is the lossless subset (4000 train / 1000 test images); ``cifar10-jpeg``
        the larger, lossy JPEG one (only when asked for by name).
    n_train, n_test : int, optional
        Subset sizes (None: the whole pool).  Subsets are class-balanced (counts differ by at
        most one while every class has images left), deterministic given ``seed``, and
        nested: a smaller subset is a prefix of a larger one.
    data_dir : path, optional
        Directory holding the files; default ``$WIDENETS_DATA``, else the first
        ``shared/data`` found above the working directory or the package.
    preprocessing : {"standardize", "standardize-pixels", "per-image", "zca", "none"}
        See :mod:`widenets.data.preprocess`; statistics come from the training subset.
    seed : int
        Chooses which images of each class are taken.
    flatten : bool
        Return ``(n, C*H*W)`` features instead of NCHW images.
    zca_reg : float
        Regularisation of ZCA whitening, relative to the mean eigenvalue.
    downsample : int
        Average-pool the images by this factor (which must divide their height and width)
        before preprocessing, e.g. 4 for 7x7 MNIST; equivalent to a network whose first layer
        is ``AvgPool2d(downsample)``, but its kernels are far cheaper.

    Returns
    -------
    Dataset

    Raises
    ------
    DataNotFoundError
        A file is missing; the message names it and says where to put it.
    HyperparameterError
        Unknown name or preprocessing, or a size larger than the pool.

    Examples
    --------
    >>> import widenets.data
    >>> ds = widenets.data.load("mnist", 100, 50, flatten=True)   # doctest: +SKIP
    >>> ds.x_train.shape, ds.y_train.bincount().tolist()           # doctest: +SKIP
    (torch.Size([100, 784]), [10, 10, 10, 10, 10, 10, 10, 10, 10, 10])
    """
    canonical = ALIASES.get(str(name).lower(), str(name).lower())
    if canonical not in NAMES:
        raise HyperparameterError(expected("name", f"one of {NAMES}", repr(name)))
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise HyperparameterError(expected("seed", "an int >= 0", repr(seed)))
    directory, origin = (None, "") if canonical == "digits" else find_data_dir(data_dir)
    raw = raw_data(canonical, directory, origin)
    n_train = _check_count("n_train", n_train, len(raw.y_train), canonical)
    n_test = _check_count("n_test", n_test, len(raw.y_test), canonical)
    # different streams for the two splits, both fixed by `seed`
    train_idx = balanced_indices(raw.y_train, n_train, int(seed))
    test_idx = balanced_indices(raw.y_test, n_test, int(seed) + 7919)
    x_train = _pool(raw.x_train[train_idx].astype(np.float64) / raw.scale, downsample)
    x_test = _pool(raw.x_test[test_idx].astype(np.float64) / raw.scale, downsample)
    x_train, x_test, text = preprocess(x_train, x_test, preprocessing, zca_reg=zca_reg)
    if downsample > 1:
        text = f"{downsample}x{downsample} average pooling, then {text}"
    if flatten:
        x_train, x_test = x_train.reshape(len(x_train), -1), x_test.reshape(len(x_test), -1)
    return Dataset(x_train=torch.from_numpy(np.ascontiguousarray(x_train)),
                   y_train=torch.from_numpy(raw.y_train[train_idx].copy()),
                   x_test=torch.from_numpy(np.ascontiguousarray(x_test)),
                   y_test=torch.from_numpy(raw.y_test[test_idx].copy()),
                   n_classes=len(raw.class_names), name=canonical, preprocessing=text,
                   class_names=raw.class_names, train_index=torch.from_numpy(train_idx),
                   test_index=torch.from_numpy(test_idx))
