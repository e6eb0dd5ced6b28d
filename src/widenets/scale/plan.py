"""Tiling plans: tiles of the kernel matrix, their memory, and their cost in FLOPs.

A kernel matrix of ``n1 x n2`` input pairs is cut into square tiles of ``tile x tile`` pairs;
one tile is one Zarr chunk and one Dask task.  For ``x2 = None`` the matrix is symmetric and
only tiles on or above the diagonal are computed (each also writes its mirror image).

The cost model counts, per input pair, the entries each layer touches (``P^2`` position
pairs for a convolution feeding global average pooling, ``P`` same-position entries
otherwise, 1 for flat features) times the operations per entry (cntk.md §1.4: ~50 for a
convolution with a ReLU for NNGP and NTK, of which ~20 for the arc-cosine).
"""

from __future__ import annotations

import dataclasses
import math

import torch

from widenets.errors import HyperparameterError, MemoryPlanError, expected

# operations per kernel entry (NNGP and NTK together) for each kind of layer; the
# transcendental functions of a dual activation are counted as ~20 flop-equivalents
FLOPS_ACTIVATION = 40
FLOPS_AFFINE = 4
FLOPS_PER_TAP = 2  # one add for the NNGP, one for the NTK


def flops_per_pair(net, in_shape: tuple[int, ...]) -> float:
    """Operations per input pair of the kernel recursion of ``net`` (a serial network)."""
    from widenets.kernels.gap import _flatten
    from widenets.layers.activation import Activation
    from widenets.layers.affine import Dense, _Conv
    from widenets.layers.pooling import Flatten, GlobalAvgPool, _AvgPool

    layers = _flatten(net) or [net]
    full = bool(net.needs_full(False, in_shape))
    shape, total = tuple(in_shape), 0.0
    entries = _entries(shape, full)
    total += 2 * shape[0] * entries  # the input kernel: a channel inner product per entry
    for layer in layers:
        out = layer.out_shape(shape)
        if isinstance(layer, _Conv):
            taps = math.prod(layer.kernel_size)
            total += (FLOPS_PER_TAP * taps + FLOPS_AFFINE) * _entries(out, full)
        elif isinstance(layer, Dense):
            total += FLOPS_AFFINE * entries
        elif isinstance(layer, Activation):
            total += FLOPS_ACTIVATION * entries
        elif isinstance(layer, _AvgPool):
            total += 2 * math.prod(layer.kernel_size) ** 2 * _entries(out, full)
        elif isinstance(layer, GlobalAvgPool | Flatten):
            total += 2 * entries
            full = False
        else:  # residual blocks, layer norm, ...: a few passes over the entries
            total += 2 * FLOPS_AFFINE * entries
        shape = out
        entries = _entries(shape, full) if len(shape) > 1 else 1
    return total


def _entries(shape: tuple[int, ...], full: bool) -> int:
    positions = math.prod(shape[1:]) if len(shape) > 1 else 1
    return positions**2 if full else positions


@dataclasses.dataclass(frozen=True)
class TilePlan:
    """How a kernel matrix is cut into tiles, and what they cost.

    Attributes
    ----------
    n1, n2 : int
        Rows and columns of the matrix.
    tile : int
        Side of a tile (the last row/column of tiles may be smaller).
    symmetric : bool
        ``x2`` is ``x1``: only tiles with ``i <= j`` are computed.
    block : int
        Inputs per side of one block of the engine inside a tile (bounds its memory).
    flops_per_pair : float
        Cost model of one input pair (see the module docstring).
    bytes_per_tile : int
        Memory of one tile's inputs, outputs and working set.
    """

    n1: int
    n2: int
    tile: int
    symmetric: bool
    block: int
    flops_per_pair: float
    bytes_per_tile: int
    n_kernels: int

    @property
    def grid(self) -> tuple[int, int]:
        return math.ceil(self.n1 / self.tile), math.ceil(self.n2 / self.tile)

    def tiles(self) -> list[tuple[int, int]]:
        """Tiles to compute, row by row (upper triangle only when symmetric)."""
        rows, cols = self.grid
        return [(i, j) for i in range(rows) for j in range(i if self.symmetric else 0, cols)]

    def pairs(self, i: int, j: int) -> int:
        """Input pairs computed by tile ``(i, j)``."""
        a = min(self.tile, self.n1 - i * self.tile)
        b = min(self.tile, self.n2 - j * self.tile)
        return a * (a + 1) // 2 if self.symmetric and i == j else a * b

    @property
    def total_pairs(self) -> int:
        return sum(self.pairs(i, j) for i, j in self.tiles())

    @property
    def total_flops(self) -> float:
        return self.total_pairs * self.flops_per_pair

    @property
    def stored_bytes(self) -> int:
        return self.n1 * self.n2 * 8 * self.n_kernels

    def describe(self, rate: float | None = None) -> str:
        """A few lines for a person: tiles, memory, FLOPs and, given a rate in FLOP/s per
        worker, the expected worker-hours."""
        rows, cols = self.grid
        kind = "symmetric, upper triangle" if self.symmetric else "rectangular"
        lines = [
            f"matrix  {self.n1} x {self.n2} ({kind}); {self.n_kernels} kernel(s) stored in "
            f"float64: {_size(self.stored_bytes)} on disk",
            f"tiles   {self.tile} x {self.tile}: grid {rows} x {cols}, {len(self.tiles())} to "
            f"compute, {self.total_pairs:,} input pairs",
            f"memory  {_size(self.bytes_per_tile)} per running tile (engine blocks of "
            f"{self.block} inputs per side)",
            f"cost    {self.flops_per_pair:.3g} FLOP per pair, {self.total_flops:.3g} FLOP in all",
        ]
        if rate:
            lines.append(f"time    {self.total_flops / rate / 3600:.3g} worker-hours at "
                         f"{rate / 1e9:.3g} GFLOP/s per worker")
        return "\n".join(lines)


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    raise AssertionError  # pragma: no cover


def plan_tiles(net, in_shape: tuple[int, ...], n1: int, n2: int | None, *, tile: int,
               get: tuple[str, ...], dtype: torch.dtype, memory: int) -> TilePlan:
    """Cut an ``n1 x n2`` kernel matrix into tiles that fit ``memory`` bytes per worker.

    Raises
    ------
    HyperparameterError
        ``tile`` is not a positive int.
    MemoryPlanError
        Not even one input pair of the engine fits in ``memory``.
    """
    from widenets.kernels.compute import _LIVE_ARRAYS
    from widenets.kernels.gap import gap_plan
    from widenets.kernels.gap_chunks import CHUNK_BYTES

    if isinstance(tile, bool) or not isinstance(tile, int) or tile < 1:
        raise HyperparameterError(expected("tile", "a positive int", repr(tile)))
    symmetric = n2 is None
    n2 = n1 if n2 is None else n2
    tile = min(tile, max(n1, n2))
    itemsize = torch.finfo(dtype).bits // 8
    full = bool(net.needs_full(False, in_shape))
    per_pair = _entries(in_shape, full) * itemsize * _LIVE_ARRAYS
    io = 2 * tile * math.prod(in_shape) * itemsize + tile * tile * 8 * (2 + len(get))
    if io + per_pair > memory:
        raise MemoryPlanError(
            f"one tile of {tile} x {tile} needs {_size(io + per_pair)} but the memory budget "
            f"per worker is {_size(memory)}: use a smaller `tile` or workers with more memory.")
    # blocks of the general engine within a tile: the largest whose working set fits
    block = max(1, min(tile, int(math.sqrt((memory - io) / per_pair))))
    working = min(block * block, tile * tile) * per_pair
    gap = gap_plan(net, in_shape) if full else None
    if gap is not None:  # the fused path works on chunks of pairs: a few buffers of a chunk
        working = 8 * max(CHUNK_BYTES, gap.entries * itemsize)
    return TilePlan(n1=n1, n2=n2, tile=tile, symmetric=symmetric, block=block,
                    flops_per_pair=flops_per_pair(net, in_shape), bytes_per_tile=io + working,
                    n_kernels=len(get))
