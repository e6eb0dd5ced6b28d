"""The kernel state that flows through a network, and the kernels it returns.

A :class:`KernelState` holds, for a batch of input pairs, the NNGP covariance and the NTK of the
current layer's pre-activations (one channel: all channels are i.i.d. at infinite width), plus
each input's covariance with itself, which activations need for their variances.

Layouts
-------
*Batch*: either a grid over ``(n1, n2)`` pairs, or (when ``x2`` is ``x1``) a list of the
``n(n+1)/2`` pairs ``(i, j)`` with ``i <= j``, which halves the work.

*Spatial*: images carry covariances per pair of positions.  In the *full* layout the pair axes
are interleaved, ``(..., H, H', W, W')``, so that each spatial dimension's two axes sit next to
each other (convolutions act on them jointly).  In the *diagonal* layout only same-position
covariances ``(..., H, W)`` are kept: that is all a network ending in ``Flatten`` needs, because
convolutions preserve the offset between the two positions (Novak et al. 2019; Arora et al. 2019).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

Tensor = torch.Tensor


@dataclass
class Kernel:
    """Infinite-width kernels of a network's output.

    Attributes
    ----------
    nngp : Tensor or None
        NNGP covariance of one output unit, shape ``(n1, n2)`` (``(n1, n2, *spatial)``
        same-position covariances if the network's output still has spatial axes).
    ntk : Tensor or None
        Neural tangent kernel of one output unit, same shape.
    """

    nngp: Tensor | None
    ntk: Tensor | None


@dataclass
class KernelState:
    """Covariances of one layer's pre-activations for a batch of input pairs.

    Attributes
    ----------
    nngp, ntk : Tensor
        Pair kernels: batch axes ``(n1, n2)`` or ``(m,)`` followed by the spatial layout.
        ``ntk`` is None when only the NNGP is requested.
    cov1, cov2 : Tensor
        Covariance of each input with itself, ``(n, *layout)``; ``cov2`` is None when ``x2``
        is ``x1``.
    index : tuple of Tensor or None
        ``(i, j)`` pair indices in the pair-list layout; None for the grid layout.
    spatial : tuple of int
        Spatial shape (empty for flat features).
    full : bool
        True for all pairs of positions, False for same-position covariances only.
    channels : int
        Width (channels or features) of the layer as written; the fan-in of the next layer.
    is_gaussian : bool
        True when the pre-activations are zero-mean Gaussian with fresh weights (the output of
        an affine layer), so that a sum with another branch has uncorrelated terms.
    """

    nngp: Tensor
    ntk: Tensor | None
    cov1: Tensor
    cov2: Tensor | None
    index: tuple[Tensor, Tensor] | None
    spatial: tuple[int, ...]
    full: bool
    channels: int
    is_gaussian: bool = False

    def replace(self, **changes) -> KernelState:
        return dataclasses.replace(self, **changes)

    @property
    def batch_ndim(self) -> int:
        return 1 if self.index is not None else 2

    def pair_axes(self, dim: int, batch_ndim: int | None = None) -> tuple[int, ...]:
        """Axes of spatial dimension ``dim``: two in the full layout, one in the diagonal."""
        b = self.batch_ndim if batch_ndim is None else batch_ndim
        return (b + 2 * dim, b + 2 * dim + 1) if self.full else (b + dim,)

    def spatial_axes(self, batch_ndim: int | None = None) -> tuple[int, ...]:
        return tuple(a for d in range(len(self.spatial)) for a in self.pair_axes(d, batch_ndim))

    def self_variance(self, cov: Tensor) -> Tensor:
        """Per-position variances ``(n, *spatial)`` of a self-covariance ``cov``."""
        if not self.full:
            return cov
        for _ in self.spatial:
            # the diagonal of the first remaining pair of axes moves to the end, in order
            cov = torch.diagonal(cov, dim1=1, dim2=2)
        return cov

    def _spread(self, var: Tensor, lead: tuple[int, ...], first: bool) -> Tensor:
        """Reshape per-position variances to broadcast against the full or diagonal layout."""
        if not self.full:
            return var.reshape(*lead, *self.spatial)
        shape = []
        for s in self.spatial:
            shape += [s, 1] if first else [1, s]
        return var.reshape(*lead, *shape)

    def variances(self, reduce_dims: tuple[int, ...] = ()) -> tuple[Tensor, Tensor]:
        """Variances of the two members of each pair, broadcastable to ``nngp``.

        ``reduce_dims`` (spatial dimensions) are averaged over first, as layer norm does.
        """
        d1 = self._reduce(self.self_variance(self.cov1), reduce_dims)
        d2 = d1 if self.cov2 is None else self._reduce(self.self_variance(self.cov2), reduce_dims)
        if self.index is not None:
            i, j = self.index
            return self._spread(d1[i], (len(i),), True), self._spread(d2[j], (len(j),), False)
        return (self._spread(d1, (d1.shape[0], 1), True),
                self._spread(d2, (1, d2.shape[0]), False))

    def self_variances(self, cov: Tensor, reduce_dims: tuple[int, ...] = ()
                       ) -> tuple[Tensor, Tensor]:
        """Variances for the entries of a self-covariance ``cov``, broadcastable to it."""
        d = self._reduce(self.self_variance(cov), reduce_dims)
        n = d.shape[0]
        return self._spread(d, (n,), True), self._spread(d, (n,), False)

    def _reduce(self, var: Tensor, dims: tuple[int, ...]) -> Tensor:
        if not dims:
            return var
        reduced = var.mean(dim=tuple(1 + d for d in dims), keepdim=True)
        return reduced.expand_as(var)

    def map_all(self, fn) -> KernelState:
        """Apply ``fn(tensor, batch_ndim)`` to nngp, ntk and the self-covariances."""
        b = self.batch_ndim
        return self.replace(
            nngp=fn(self.nngp, b),
            ntk=None if self.ntk is None else fn(self.ntk, b),
            cov1=fn(self.cov1, 1),
            cov2=None if self.cov2 is None else fn(self.cov2, 1),
        )
