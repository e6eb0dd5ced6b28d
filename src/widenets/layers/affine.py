"""Dense and convolutional layers: the affine kernel rule (kernels.md, "Layers").

NTK parameterisation (Jacot et al. 2018; neural-tangents' convention)::

    K' = W_std^2 K + b_std^2,        Theta' = K' + W_std^2 Theta

Standard parameterisation (Sohl-Dickstein et al. 2020)::

    K' = W_std^2 K + b_std^2,        Theta' = fan_in K + W_std^2 Theta + [bias]

where ``K`` is the mean over input channels (so the NTK of the standard parameterisation
grows with the width).  A convolution first takes the joint-shift window mean of ``K`` and
``Theta`` over its filter (Arora et al. 2019, eq. 7; Novak et al. 2019, eq. 5).
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

from widenets.errors import HyperparameterError, ShapeError, expected
from widenets.finite import modules
from widenets.kernels.spatial import PADDINGS, pad_plan, window_sum
from widenets.kernels.state import KernelState
from widenets.layers.base import Layer, check_positive_int, check_std, register

PARAMETERIZATIONS = ("ntk", "standard")


def affine_pair(nngp, ntk, weight_std: float, bias_std: float | None,
                parameterization: str, fan_in: int):
    """``(K', Theta')`` of an affine layer from its input's ``(K, Theta)`` (tensors)."""
    w2 = weight_std**2
    b2 = 0.0 if bias_std is None else bias_std**2
    out = w2 * nngp + b2
    if ntk is not None:
        if parameterization == "ntk":
            ntk = out + w2 * ntk
        else:
            ntk = fan_in * nngp + w2 * ntk + (0.0 if bias_std is None else 1.0)
    return out, ntk


def affine_rule(state: KernelState, weight_std: float, bias_std: float | None,
                parameterization: str, fan_in: int) -> KernelState:
    """Apply ``K' = W^2 K + b^2`` and the NTK rule of either parameterisation."""
    from widenets.kernels.fused import fused

    w2 = weight_std**2
    b2 = 0.0 if bias_std is None else bias_std**2
    # one fused pass instead of four when the tensors are large (compiled where it pays)
    key = ("affine", weight_std, bias_std, parameterization,
           fan_in if parameterization == "standard" else None,  # unused by "ntk"
           state.ntk is not None, state.nngp.dtype, state.nngp.device.type, state.nngp.ndim)
    rule = fused(key, lambda k, t: affine_pair(k, t, weight_std, bias_std, parameterization,
                                               fan_in), state.nngp.numel() * 4, dynamic=True)
    nngp, ntk = rule(state.nngp, state.ntk)
    return state.replace(nngp=nngp, ntk=ntk, cov1=w2 * state.cov1 + b2,
                         cov2=None if state.cov2 is None else w2 * state.cov2 + b2,
                         is_gaussian=True)


def _check_affine(layer) -> None:
    check_std("weight_std", layer.weight_std)
    check_std("bias_std", layer.bias_std, allow_none=True)
    if layer.parameterization not in PARAMETERIZATIONS:
        raise HyperparameterError(expected("parameterization", f"one of {PARAMETERIZATIONS}",
                                           repr(layer.parameterization)))


@register
@dataclasses.dataclass(frozen=True)
class Dense(Layer):
    """Fully connected layer; on images it acts on the channel axis at every position.

    Finite network: ``z = W_std / sqrt(fan_in) * x W + b_std * b`` with ``W, b ~ N(0, 1)``
    (``parameterization="ntk"``), or ``W ~ N(0, W_std^2 / fan_in)``, ``b ~ N(0, b_std^2)``
    (``"standard"``).  ``bias_std=None`` means no bias.
    """

    out_features: int
    weight_std: float = 1.0
    bias_std: float | None = None
    parameterization: str = "ntk"
    width_field: ClassVar[str] = "out_features"

    def __post_init__(self):
        check_positive_int("out_features", self.out_features)
        _check_affine(self)

    def out_shape(self, in_shape):
        return (self.out_features, *in_shape[1:])

    def kernel_step(self, state: KernelState) -> KernelState:
        out = affine_rule(state, self.weight_std, self.bias_std, self.parameterization,
                          state.channels)
        return out.replace(channels=self.out_features)

    def build(self, seeds):
        return modules.Affine(self.out_features, weight_std=self.weight_std,
                              bias_std=self.bias_std, parameterization=self.parameterization,
                              seed=next(seeds))


@dataclasses.dataclass(frozen=True)
class _Conv(Layer):
    """N-d convolution (NCHW), zero ('valid', 'same') or circular padding."""

    out_channels: int
    kernel_size: int | tuple[int, ...] = 3
    stride: int | tuple[int, ...] = 1
    padding: str = "valid"
    weight_std: float = 1.0
    bias_std: float | None = None
    parameterization: str = "ntk"
    width_field: ClassVar[str] = "out_channels"
    ndim: ClassVar[int] = 2

    def __post_init__(self):
        check_positive_int("out_channels", self.out_channels)
        for name in ("kernel_size", "stride"):
            value = getattr(self, name)
            value = (value,) * self.ndim if isinstance(value, int) else tuple(value)
            if len(value) != self.ndim:
                raise HyperparameterError(expected(name, f"an int or {self.ndim} ints", value))
            for v in value:
                check_positive_int(name, v)
            object.__setattr__(self, name, value)
        if self.padding not in PADDINGS:
            raise HyperparameterError(expected("padding", f"one of {PADDINGS}",
                                               repr(self.padding)))
        _check_affine(self)

    def out_shape(self, in_shape):
        if len(in_shape) != self.ndim + 1:
            axes = ("C", "L") if self.ndim == 1 else ("C", "H", "W") if self.ndim == 2 \
                else ("C", "D", "H", "W")
            raise ShapeError(expected("input", f"of shape ({', '.join(axes)}) per example "
                                      f"for {type(self).__name__}", in_shape))
        spatial = [pad_plan(s, k, st, self.padding)[2]
                   for s, k, st in zip(in_shape[1:], self.kernel_size, self.stride, strict=True)]
        return (self.out_channels, *spatial)

    def kernel_step(self, state: KernelState) -> KernelState:
        taps = math.prod(self.kernel_size)

        def shift(t, batch_ndim):
            for d, (k, s) in enumerate(zip(self.kernel_size, self.stride, strict=True)):
                t = window_sum(t, state.pair_axes(d, batch_ndim), k, s, self.padding)
            return t / taps

        pooled = state.map_all(shift)
        spatial = tuple(pad_plan(n, k, s, self.padding)[2] for n, k, s in
                        zip(state.spatial, self.kernel_size, self.stride, strict=True))
        out = affine_rule(pooled, self.weight_std, self.bias_std, self.parameterization,
                          state.channels * taps)
        return out.replace(spatial=spatial, channels=self.out_channels)

    def build(self, seeds):
        return modules.Affine(self.out_channels, self.kernel_size, self.stride, self.padding,
                              weight_std=self.weight_std, bias_std=self.bias_std,
                              parameterization=self.parameterization, seed=next(seeds))


@register
@dataclasses.dataclass(frozen=True)
class Conv1d(_Conv):
    __doc__ = _Conv.__doc__
    ndim: ClassVar[int] = 1


@register
@dataclasses.dataclass(frozen=True)
class Conv2d(_Conv):
    __doc__ = _Conv.__doc__
    ndim: ClassVar[int] = 2


@register
@dataclasses.dataclass(frozen=True)
class Conv3d(_Conv):
    __doc__ = _Conv.__doc__
    ndim: ClassVar[int] = 3
