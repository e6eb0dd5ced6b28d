"""Layer normalisation (kernels.md, "LayerNorm"; neural-tangents' ``LayerNorm``).

With ``v`` the variance averaged over the normalised axes (the channel axis, and any spatial
axes also normalised), the infinite-width rule is::

    K'12 = K12 / sqrt((v1 + eps)(v2 + eps)),      Theta'12 = Theta12 / sqrt((v1 + eps)(v2 + eps))

The rule holds for zero-mean Gaussian inputs (right after an affine layer), where the finite
layer's mean subtraction vanishes at infinite width; elsewhere it is refused.
"""

from __future__ import annotations

import dataclasses

from widenets.errors import HyperparameterError, ShapeError, expected
from widenets.finite import modules
from widenets.kernels.state import KernelState
from widenets.layers.base import Layer, check_std, register


@register
@dataclasses.dataclass(frozen=True)
class LayerNorm(Layer):
    """Normalise over ``axis`` (dims of the NCHW input; 1 = channels, which must be included).

    Parameters
    ----------
    axis : int or tuple of int
        Axes of the full input tensor (batch axis 0 excluded), e.g. ``1`` for channels only or
        ``(1, 2, 3)`` for (C, H, W).  Negative values count from the end.
    eps : float
        Added to the variance.
    """

    axis: int | tuple[int, ...] = 1
    eps: float = 1e-12

    def __post_init__(self):
        axis = (self.axis,) if isinstance(self.axis, int) else tuple(self.axis)
        if not axis or any(isinstance(a, bool) or not isinstance(a, int) for a in axis):
            raise HyperparameterError(expected("axis", "an int or a tuple of ints", self.axis))
        object.__setattr__(self, "axis", axis)
        check_std("eps", self.eps)

    def _axes(self, rank: int) -> tuple[int, ...]:
        axes = tuple(sorted({a % rank if -rank <= a < rank else rank for a in self.axis}))
        if rank in axes or 0 in axes:
            raise ShapeError(expected("axis", f"axes in 1..{rank - 1} of an input of rank "
                                      f"{rank} (the batch axis 0 cannot be normalised)",
                                      self.axis))
        if 1 not in axes:
            raise HyperparameterError(expected(
                "axis", "a set of axes including the channel axis 1 (normalising without "
                "channels has no infinite-width limit)", self.axis))
        return axes

    def out_shape(self, in_shape):
        self._axes(len(in_shape) + 1)
        return in_shape

    def kernel_step(self, state: KernelState) -> KernelState:
        if not state.is_gaussian:
            raise HyperparameterError(
                "LayerNorm needs zero-mean Gaussian inputs: place it right after a Dense or "
                "Conv layer (after a nonlinearity the finite layer's mean subtraction changes "
                "the kernel, and its infinite-width limit has no closed form here).")
        rank = len(state.spatial) + 2
        reduce_dims = tuple(a - 2 for a in self._axes(rank) if a >= 2)
        v1, v2 = state.variances(reduce_dims)
        scale = ((v1 + self.eps) * (v2 + self.eps)) ** -0.5

        def self_norm(cov):
            va, vb = state.self_variances(cov, reduce_dims)
            return cov * ((va + self.eps) * (vb + self.eps)) ** -0.5

        return state.replace(nngp=state.nngp * scale,
                             ntk=None if state.ntk is None else state.ntk * scale,
                             cov1=self_norm(state.cov1),
                             cov2=None if state.cov2 is None else self_norm(state.cov2),
                             is_gaussian=False)

    def build(self, seeds):
        return modules.LayerNorm(self.axis, self.eps)
