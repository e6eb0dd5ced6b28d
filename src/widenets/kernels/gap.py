"""Convolution stacks read out by global average pooling (CNTK-GAP, CNN-GP-GAP), fused.

GAP kernels need the covariance of every pair of positions ``K[p, p']`` for every pair of
inputs (cntk.md §1.3).  The general engine runs each layer over the whole batch of pairs, so
every intermediate goes through main memory; this path runs *all* layers on a chunk of pairs
small enough to stay in cache, and fuses each layer's joint-shift window sum, affine rule,
dual activation and masking into one pass (compiled where it pays, :mod:`fused`).

Layout.  Each image is padded by ``s`` zero *slots* per spatial axis (``s`` = the largest
half-window of a 'same' convolution) and flattened to ``Q`` entries; a pair's covariances form
a ``(Q, Q)`` matrix, stored flat.  A joint shift of both positions by ``a`` along one dimension
is then a shift of the flat buffer by ``a (Q + 1)`` times that dimension's stride, and every
read that leaves the image lands on a slot (zero), so a convolution is a sum of shifted slices:
no padding copies, no gathers, contiguous inner loops.  Each stage computes the image's
positions only (81^2 padded entries for 64^2 real ones on 8x8 images: 1.6x less work than
the whole padded layout) and leaves the slots at zero.  Offset planes ``p - p'`` never mix
here, which is what makes the chunked, all-layers-at-once evaluation exact (cntk.md §1.3).

Each input's variances per position and layer come from the pair of that input with itself,
run first (they are its same-position entries, read before each activation), and are shared
by all pairs: an input paired with itself then gets exactly correlation 1 on its diagonal, as
in the general engine.  The GAP means are accumulated in float64.

Supported: Conv with stride 1 and padding 'same' or 'valid', Dense (per position),
activations, Identity, nested ``serial``; then GlobalAvgPool and any flat layers after it.
Anything else (pooling, strides, residual branches, layer norm, circular padding) uses the
general engine.

References
----------
Arora, Du, Hu, Li, Salakhutdinov, Wang, "On exact computation with an infinitely wide neural
net", NeurIPS 2019 (arXiv:1904.11955): the CNTK recursion with a GAP readout, restated in
our notation in cntk.md §1.2 (section and equation numbers of the paper not re-checked here).
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import torch

from widenets.kernels.gap_chunks import run_pairs
from widenets.kernels.state import KernelState

Tensor = torch.Tensor


@dataclasses.dataclass(frozen=True)
class Stage:
    """One convolution (or none) followed by position-wise layers."""

    conv: object | None
    pointwise: tuple
    offsets: tuple[int, ...]  # flat shifts of the conv's taps
    fan_in: int  # of the conv (channels x taps), for the standard parameterisation
    channels: tuple[int, ...]  # fan-in of each position-wise layer
    size: tuple[int, ...]  # image size after the stage


@dataclasses.dataclass(frozen=True)
class GapPlan:
    """How to run a network's layers up to global average pooling on chunks of pairs."""

    stages: tuple[Stage, ...]
    tail: tuple
    spatial: tuple[int, ...]  # input image size
    out_spatial: tuple[int, ...]  # size at the pooling layer
    rows: tuple[int, ...]  # padded length of each axis
    margin: int
    channels: int  # at the pooling layer
    is_gaussian: bool

    @property
    def side(self) -> int:
        """Entries of one padded image."""
        return math.prod(self.rows)

    @property
    def entries(self) -> int:
        return self.side**2


def _flatten(layer) -> list | None:
    from widenets.layers.combinators import Serial

    if isinstance(layer, Serial):
        out = []
        for child in layer.layers:
            sub = _flatten(child)
            if sub is None:
                return None
            out += sub
        return out
    return [layer]


def gap_plan(net, in_shape: tuple[int, ...]) -> GapPlan | None:
    """The fused plan for ``net`` on inputs of shape ``in_shape``, or None if unsupported."""
    from widenets.layers.activation import Activation
    from widenets.layers.affine import Dense, _Conv
    from widenets.layers.pooling import GlobalAvgPool

    layers = _flatten(net)
    if layers is None or len(in_shape) < 2:
        return None
    pools = [i for i, layer in enumerate(layers) if isinstance(layer, GlobalAvgPool)]
    if not pools:
        return None
    head, tail = layers[:pools[0]], tuple(layers[pools[0] + 1:])
    ndim = len(in_shape) - 1
    slots = [0] * ndim
    for layer in head:
        if isinstance(layer, _Conv):
            if layer.ndim != ndim or any(s != 1 for s in layer.stride) \
                    or layer.padding not in ("same", "valid"):
                return None
            if layer.padding == "same":
                slots = [max(s, (k - 1) - (k - 1) // 2, (k - 1) // 2)
                         for s, k in zip(slots, layer.kernel_size, strict=True)]
        elif not isinstance(layer, Dense | Activation):
            return None
    return _build(head, tail, tuple(in_shape), tuple(slots))


def _build(head, tail, in_shape, slots) -> GapPlan:
    from widenets.kernels.spatial import pad_plan
    from widenets.layers.activation import Activation
    from widenets.layers.affine import _Conv
    from widenets.layers.relu import Identity

    spatial = in_shape[1:]
    rows = tuple(s + p for s, p in zip(spatial, slots, strict=True))
    # flat stride of a joint shift along each dimension: its stride in the first image plus
    # its stride in the second
    side = math.prod(rows)
    joint = [math.prod(rows[d + 1:]) * (side + 1) for d in range(len(rows))]
    channels, size, is_gaussian = in_shape[0], list(spatial), False
    stages, margin, conv, fan_in, offsets, pointwise, fans = [], 0, None, 0, (0,), [], []

    def close():
        if conv is not None or pointwise:
            stages.append(Stage(conv, tuple(pointwise), offsets, fan_in, tuple(fans),
                                tuple(size)))

    for layer in head:
        if isinstance(layer, _Conv):
            close()
            ranges = []
            for d, k in enumerate(layer.kernel_size):
                lo = (k - 1) // 2 if layer.padding == "same" else 0
                ranges.append(range(-lo, k - lo))
                size[d] = pad_plan(size[d], k, 1, layer.padding)[2]
            offsets = tuple(sum(a * j for a, j in zip(taps, joint, strict=True))
                            for taps in itertools.product(*ranges))
            margin = max(margin, *(abs(o) for o in offsets))
            conv, fan_in, pointwise, fans = layer, channels * len(offsets), [], []
            channels, is_gaussian = layer.out_channels, True
        elif not isinstance(layer, Identity):
            pointwise.append(layer)
            fans.append(channels)
            if isinstance(layer, Activation):
                is_gaussian = False
            else:
                channels, is_gaussian = layer.out_features, True
    close()
    return GapPlan(tuple(stages), tail, tuple(spatial), tuple(size), rows, margin, channels,
                   is_gaussian)


# input pairs per call of run_pairs: bounds the index arrays of a large matrix
BLOCK_PAIRS = 2**20


def gap_kernel(plan: GapPlan, x1: Tensor, x2: Tensor | None, with_ntk: bool
               ) -> tuple[Tensor, Tensor | None]:
    """Output kernels ``(nngp, ntk)``, shape ``(n1, n2)``, of a network with a GAP plan."""
    n1, symmetric = len(x1), x2 is None
    n2 = n1 if symmetric else len(x2)
    x = x1 if symmetric else torch.cat([x1, x2])
    own = torch.arange(len(x), device=x.device)
    k_own, t_own, tables = run_pairs(plan, x, own, own, with_ntk)
    total = n1 * (n1 - 1) // 2 if symmetric else n1 * n2
    outs = [torch.diag(v) if symmetric else v.new_empty(n1, n2)
            for v in ((k_own, t_own) if with_ntk else (k_own,))]
    step = max(1, BLOCK_PAIRS // n2)
    for start in range(0, n1, step):
        rows, cols = _block_pairs(start, min(start + step, n1), n1, n2, symmetric, x.device)
        if len(rows):
            values = run_pairs(plan, x, rows, cols, with_ntk, tables, total_pairs=total)[:2]
            for out, v in zip(outs, values, strict=False):
                out[rows, cols - (0 if symmetric else n1)] = v
                if symmetric:
                    out[cols, rows] = v
    cov1, cov2 = (k_own, None) if symmetric else (k_own[:n1], k_own[n1:])
    state = KernelState(nngp=outs[0], ntk=outs[1] if with_ntk else None, cov1=cov1,
                        cov2=cov2, index=None, spatial=(), full=False, channels=plan.channels,
                        is_gaussian=plan.is_gaussian)
    state = state.map_all(lambda v, _: v.to(x1.dtype))
    for layer in plan.tail:
        state = layer.kernel_step(state)
    return state.nngp, state.ntk


def _block_pairs(start: int, stop: int, n1: int, n2: int, symmetric: bool, device):
    """Pairs of rows ``start..stop-1``: with the later rows (symmetric) or with every input of
    ``x2``, whose indices in ``cat(x1, x2)`` start at ``n1``."""
    rows, cols = torch.meshgrid(torch.arange(start, stop, device=device),
                                torch.arange(n2, device=device), indexing="ij")
    if symmetric:
        keep = cols > rows
        return rows[keep], cols[keep]
    return rows.reshape(-1), cols.reshape(-1) + n1
