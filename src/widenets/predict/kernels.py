"""Train-train and test-train kernels computed in row blocks, with progress reports.

Only ``net.kernel`` is called, on square tiles of at most ``block_size`` inputs per side (so
memory stays bounded whatever the number of inputs): the train-train matrix over its upper
triangle (diagonal tiles use the symmetric path, which halves their work), then the
test-train matrix.  ``callback(pairs)`` is called after each block
with the number of input pairs it covered, for a progress bar.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from widenets.errors import HyperparameterError, expected
from widenets.kernels.state import Kernel
from widenets.validation import as_inputs


def _blocks(n: int, size: int):
    return [(i, min(i + size, n)) for i in range(0, n, size)]


def train_test_kernels(net, x_train, x_test=None, *, get: str | Sequence[str] = ("nngp", "ntk"),
                       block_size: int = 256, callback: Callable[[int], None] | None = None
                       ) -> tuple[Kernel, Kernel | None]:
    """``(k_train_train, k_test_train)`` of ``net``, computed in tiles of ``block_size``.

    Parameters
    ----------
    net : widenets.Layer
    x_train : Tensor ``(n, ...)``
    x_test : Tensor ``(m, ...)``, optional
    get : "nngp", "ntk" or both
    block_size : int
        Inputs per side of a tile (memory and progress granularity).
    callback : callable, optional
        Called with the number of input pairs of each finished block; the total is
        ``n (n + 1) / 2 + m n`` (see :func:`pair_count`).

    Returns
    -------
    (Kernel, Kernel or None)
        Float64 kernels ``(n, n)`` and ``(m, n)``.
    """
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
        raise HyperparameterError(expected("block_size", "a positive int", repr(block_size)))
    gets = (get,) if isinstance(get, str) else tuple(get)
    x_train = as_inputs("x_train", x_train, torch.float64)
    x_test = None if x_test is None else as_inputs("x_test", x_test, torch.float64,
                                                   like=x_train)
    n = len(x_train)
    dd = {g: x_train.new_empty(n, n) for g in gets}
    for i0, i1 in _blocks(n, block_size):
        for j0, j1 in _blocks(n, block_size):
            if j0 < i0:
                continue  # the lower triangle is the transpose of the upper one
            same = i0 == j0
            k = net.kernel(x_train[i0:i1], None if same else x_train[j0:j1], get=gets)
            for g in gets:
                block = getattr(k, g)
                dd[g][i0:i1, j0:j1] = block
                dd[g][j0:j1, i0:i1] = block.T
            if callback is not None:
                callback((i1 - i0) * (i1 - i0 + 1) // 2 if same else (i1 - i0) * (j1 - j0))
    k_dd = Kernel(nngp=dd.get("nngp"), ntk=dd.get("ntk"))
    if x_test is None:
        return k_dd, None
    td = {g: x_train.new_empty(len(x_test), n) for g in gets}
    for j0, j1 in _blocks(len(x_test), block_size):
        for i0, i1 in _blocks(n, block_size):
            k = net.kernel(x_test[j0:j1], x_train[i0:i1], get=gets)
            for g in gets:
                td[g][j0:j1, i0:i1] = getattr(k, g)
            if callback is not None:
                callback((j1 - j0) * (i1 - i0))
    return k_dd, Kernel(nngp=td.get("nngp"), ntk=td.get("ntk"))


def pair_count(n_train: int, n_test: int = 0) -> int:
    """Input pairs :func:`train_test_kernels` evaluates: ``n (n + 1) / 2 + m n``."""
    return n_train * (n_train + 1) // 2 + n_test * n_train
