"""The activation protocol: an elementwise function and its dual kernel.

For pre-activations ``(u, v) ~ N(0, [[K11, K12], [K12, K22]])`` an activation ``phi`` maps
(kernels.md, "Activation"; Lee et al. 2018, eq. 5; Jacot et al. 2018, Thm. 1)::

    K'12 = E[phi(u) phi(v)],        Theta'12 = Theta12 * E[phi'(u) phi'(v)]

The covariance is first clipped to ``|K12| <= sqrt(K11 K22)``.  Subclasses give
``function`` (the finite activation) and ``dual`` (both expectations).
"""

from __future__ import annotations

import dataclasses

import torch

from widenets.finite import modules
from widenets.kernels.gaussian import clip_covariance
from widenets.kernels.state import KernelState
from widenets.layers.base import Layer

Tensor = torch.Tensor


@dataclasses.dataclass(frozen=True)
class Activation(Layer):
    """Base class of elementwise nonlinearities."""

    def function(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def dual(self, c: Tensor, v1: Tensor, v2: Tensor, ntk: bool) -> tuple[Tensor, Tensor | None]:
        """``(E[phi(u) phi(v)], E[phi'(u) phi'(v)] or None)`` for covariance ``c``, variances
        ``v1``, ``v2`` (broadcastable tensors)."""
        raise NotImplementedError

    def dual_diag(self, v: Tensor) -> Tensor:
        """``E[phi(u)^2]`` for ``u ~ N(0, v)``."""
        return self.dual(v, v, v, False)[0]

    def pair_rule(self, nngp: Tensor, ntk: Tensor | None, v1: Tensor, v2: Tensor
                  ) -> tuple[Tensor, Tensor | None]:
        """``(K', Theta')`` of the pairs from their ``(K, Theta)`` and variances."""
        out, kdot = self.dual(clip_covariance(nngp, v1, v2), v1, v2, ntk is not None)
        return out, (None if ntk is None else ntk * kdot)

    def kernel_step(self, state: KernelState) -> KernelState:
        v1, v2 = state.variances()
        nngp, ntk = fused_pair_rule(self, state.nngp, state.ntk, v1, v2)
        return state.replace(nngp=nngp, ntk=ntk, cov1=self._self_dual(state, state.cov1),
                             cov2=None if state.cov2 is None
                             else self._self_dual(state, state.cov2), is_gaussian=False)

    def _self_dual(self, state: KernelState, cov: Tensor) -> Tensor:
        if not state.full:
            return self.dual_diag(cov)
        va, vb = state.self_variances(cov)
        return self.dual(clip_covariance(cov, va, vb), va, vb, False)[0]

    def build(self, seeds):
        return modules.Activation(self.function, repr(self))


# elementwise passes of a dual kernel in eager PyTorch (clip, angle, closed form, NTK product)
_PASSES = 24


def fused_pair_rule(layer: Activation, nngp: Tensor, ntk: Tensor | None, v1: Tensor,
                    v2: Tensor) -> tuple[Tensor, Tensor | None]:
    """:meth:`Activation.pair_rule`, compiled into one loop when the tensors are large enough
    to repay compiling (:func:`widenets.kernels.fused.fused`); quadrature layers stay eager."""
    from widenets.kernels.fused import fused
    from widenets.layers.elementwise import Elementwise

    if isinstance(layer, Elementwise):
        return layer.pair_rule(nngp, ntk, v1, v2)
    key = ("activation", layer, ntk is not None, nngp.dtype, nngp.device.type, nngp.ndim,
           v1.ndim)
    fn = fused(key, lambda c, t, a, b: layer.pair_rule(c, t, a, b), nngp.numel() * _PASSES,
               dynamic=True)
    return fn(nngp, ntk, v1, v2)
