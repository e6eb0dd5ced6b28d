"""The regression tasks of spec §7.1: two image classes with labels -1/+1.

The authors' code takes MNIST digits 0 and 1 (CIFAR-10 airplane/automobile in grey scale),
normalises the pixels with the MNIST constants ``(x - 0.1307) / 0.3081``, flattens them and
regresses the class index.  We do the same except for the labels, which are ``-1`` for the
first class and ``+1`` for the second (centred, so that a bias-free network need not spend
its output on a constant offset).  CIFAR images are converted to grey by averaging the three
channels (no resizing: N0 = 1024); ``pool`` > 1 averages ``pool x pool`` blocks to shrink N0
(for cheaper sampling).
"""

from __future__ import annotations

import dataclasses

import torch

from widenets.errors import HyperparameterError, expected

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


@dataclasses.dataclass(frozen=True)
class Task:
    """Flattened float64 inputs and -1/+1 labels of a two-class regression task."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    description: str


def two_class_task(name: str, n_train: int, n_test: int, *, classes=(0, 1), pool: int = 1,
                   seed: int = 0, data_dir=None) -> Task:
    """The first ``n_train`` / ``n_test`` images of two classes (balanced, nested in n).

    Raises
    ------
    HyperparameterError
        If the data set's pools hold fewer images of the two classes than asked for.
    DataNotFoundError
        If the data files are missing.
    """
    from widenets.data import load

    if len(classes) != 2 or classes[0] == classes[1]:
        raise HyperparameterError(expected("classes", "two different class indices", classes))
    for split, n in (("n_train", n_train), ("n_test", n_test)):
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise HyperparameterError(expected(split, "a positive int", repr(n)))
    if isinstance(pool, bool) or not isinstance(pool, int) or pool < 1:
        raise HyperparameterError(expected("pool", "a positive int", repr(pool)))
    # the loader's subsets cycle through the classes: 5n + 20 images hold n of any two
    sizes = [5 * n_train + 20, 5 * n_test + 20]
    try:
        full = load(name, *sizes, preprocessing="none", seed=seed, data_dir=data_dir)
    except HyperparameterError:  # a pool smaller than that: take all of it
        full = load(name, preprocessing="none", seed=seed, data_dir=data_dir)
    n_classes = int(full.y_train.max()) + 1
    if not all(0 <= int(c) < n_classes for c in classes):
        raise HyperparameterError(expected("classes", f"class indices in 0..{n_classes - 1} "
                                           f"for {name!r}", tuple(classes)))
    out = []
    for x, y, n, split in ((full.x_train, full.y_train, n_train, "n_train"),
                           (full.x_test, full.y_test, n_test, "n_test")):
        keep = (y == classes[0]) | (y == classes[1])
        if int(keep.sum()) < n:
            raise HyperparameterError(expected(split, f"at most {int(keep.sum())} for classes "
                                               f"{tuple(classes)} of {name!r}", n))
        x, y = x[keep][:n], y[keep][:n]
        x = x.mean(1, keepdim=True)  # grey scale (a no-op for MNIST)
        if pool > 1:
            x = torch.nn.functional.avg_pool2d(x, pool)
        x = ((x - MNIST_MEAN) / MNIST_STD).reshape(n, -1)
        out += [x.to(torch.float64), torch.where(y == classes[1], 1.0, -1.0).to(torch.float64)]
    pooling = f"{pool}x{pool} average pooling, " if pool > 1 else ""
    text = (f"{name} classes {classes[0]} (-1) vs {classes[1]} (+1), grey, {pooling}"
            f"(x - {MNIST_MEAN}) / {MNIST_STD}, N0 = {out[0].shape[1]}")
    return Task(*out, description=text)
