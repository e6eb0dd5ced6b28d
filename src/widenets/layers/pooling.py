"""Readouts and pooling: Flatten, GlobalAvgPool, AvgPool (kernels.md; cntk.md §1.2).

* ``Flatten``: ``K' = mean_p K[p, p]``; only same-position covariances are needed (CNTK-V).
* ``GlobalAvgPool``: ``K' = mean_{p, p'} K[p, p']`` over all pairs of positions (CNTK-GAP).
* ``AvgPool``: ``K'[q, q'] = |w|^-2 sum_{d, d'} Kpad[s q + d, s q' + d']``, dividing by the
  full window even where it overlaps the zero padding (neural-tangents' default).
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import torch

from widenets.errors import HyperparameterError, ShapeError, expected
from widenets.finite import modules
from widenets.kernels.spatial import PADDINGS, pad_plan, window_sum
from widenets.kernels.state import KernelState
from widenets.layers.base import Layer, check_positive_int, register


def _require_spatial(layer: Layer, in_shape) -> None:
    if len(in_shape) < 2:
        raise ShapeError(expected("input", f"an image (C, *spatial) for {type(layer).__name__}",
                                  f"flat features of shape {in_shape}"))


@register
@dataclasses.dataclass(frozen=True)
class Flatten(Layer):
    """Flatten (C, *spatial) to C * prod(spatial) features; the vanilla CNN readout."""

    def out_shape(self, in_shape):
        return (math.prod(in_shape),)

    def needs_full(self, out_full, in_shape):
        return False

    def kernel_step(self, state: KernelState) -> KernelState:
        if not state.spatial:
            return state
        n_sp = len(state.spatial)

        def diag_mean(t, batch_ndim):
            if state.full:
                for _ in range(n_sp):
                    t = torch.diagonal(t, dim1=batch_ndim, dim2=batch_ndim + 1)
            return t.mean(dim=tuple(range(batch_ndim, batch_ndim + n_sp)))

        out = state.map_all(diag_mean)
        return out.replace(spatial=(), full=False,
                           channels=state.channels * math.prod(state.spatial))

    def build(self, seeds):
        return modules.Flatten()


@register
@dataclasses.dataclass(frozen=True)
class GlobalAvgPool(Layer):
    """Mean over all spatial positions; its kernel needs every pair of positions."""

    def out_shape(self, in_shape):
        _require_spatial(self, in_shape)
        return (in_shape[0],)

    def needs_full(self, out_full, in_shape):
        return True

    def kernel_step(self, state: KernelState) -> KernelState:
        if not state.full:  # pragma: no cover - requirement propagation guarantees it
            raise RuntimeError("GlobalAvgPool received same-position covariances only")

        def mean(t, batch_ndim):
            return t.mean(dim=state.spatial_axes(batch_ndim))

        return state.map_all(mean).replace(spatial=(), full=False)

    def build(self, seeds):
        return modules.GlobalAvgPool()


@dataclasses.dataclass(frozen=True)
class _AvgPool(Layer):
    """Average pooling over windows of size ``kernel_size`` (stride defaults to it)."""

    kernel_size: int | tuple[int, ...] = 2
    stride: int | tuple[int, ...] | None = None
    padding: str = "valid"
    ndim: ClassVar[int] = 2

    def __post_init__(self):
        stride = self.kernel_size if self.stride is None else self.stride
        for name, value in (("kernel_size", self.kernel_size), ("stride", stride)):
            value = (value,) * self.ndim if isinstance(value, int) else tuple(value)
            if len(value) != self.ndim:
                raise HyperparameterError(expected(name, f"an int or {self.ndim} ints", value))
            for v in value:
                check_positive_int(name, v)
            object.__setattr__(self, name, value)
        if self.padding not in PADDINGS:
            raise HyperparameterError(expected("padding", f"one of {PADDINGS}",
                                               repr(self.padding)))

    def out_shape(self, in_shape):
        if len(in_shape) != self.ndim + 1:
            raise ShapeError(expected("input", f"of rank {self.ndim + 1} (C, *spatial) per "
                                      f"example for {type(self).__name__}", in_shape))
        return (in_shape[0], *(pad_plan(n, k, s, self.padding)[2] for n, k, s in
                               zip(in_shape[1:], self.kernel_size, self.stride, strict=True)))

    def needs_full(self, out_full, in_shape):
        return True

    def kernel_step(self, state: KernelState) -> KernelState:
        window = math.prod(self.kernel_size)

        def pool(t, batch_ndim):
            for d, (k, s) in enumerate(zip(self.kernel_size, self.stride, strict=True)):
                for axis in state.pair_axes(d, batch_ndim):  # each position moves on its own
                    t = window_sum(t, (axis,), k, s, self.padding)
            return t / window**2

        spatial = tuple(pad_plan(n, k, s, self.padding)[2] for n, k, s in
                        zip(state.spatial, self.kernel_size, self.stride, strict=True))
        return state.map_all(pool).replace(spatial=spatial)

    def build(self, seeds):
        return modules.AvgPool(self.kernel_size, self.stride, self.padding)


@register
@dataclasses.dataclass(frozen=True)
class AvgPool1d(_AvgPool):
    __doc__ = _AvgPool.__doc__
    ndim: ClassVar[int] = 1


@register
@dataclasses.dataclass(frozen=True)
class AvgPool2d(_AvgPool):
    __doc__ = _AvgPool.__doc__
    ndim: ClassVar[int] = 2


@register
@dataclasses.dataclass(frozen=True)
class AvgPool3d(_AvgPool):
    __doc__ = _AvgPool.__doc__
    ndim: ClassVar[int] = 3
