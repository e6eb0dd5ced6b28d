"""Piecewise-linear activations and the sign, by arc-cosine kernels (Cho & Saul 2009).

``ABRelu(a, b) = a min(u, 0) + b max(u, 0)``; with ``theta = arccos(K12 / sqrt(K11 K22))``
(neural-tangents' ``ABRelu``; Cho & Saul 2009, eq. 6 with n = 0, 1)::

    E[phi phi]   = (a - b)^2 / (2 pi) * sqrt(K11 K22 - K12^2)
                   + ((a^2 + b^2) / 2 - (a - b)^2 theta / (2 pi)) K12
    E[phi' phi'] = (a^2 + b^2) / 2 - (a - b)^2 theta / (2 pi)

``Relu = ABRelu(0, 1)``, ``LeakyRelu(alpha) = ABRelu(alpha, 1)``, ``Abs = ABRelu(-1, 1)``;
``Sign``: ``E = 1 - 2 theta / pi`` and no NTK contribution (its derivative is 0 a.e.).
"""

from __future__ import annotations

import dataclasses
import math

import torch

from widenets.kernels.gaussian import angle
from widenets.layers.activation import Activation
from widenets.layers.base import check_finite, register


def abrelu_dual(a: float, b: float, c, v1, v2, ntk: bool):
    s, theta = angle(c, v1, v2)
    factor = (a - b) ** 2 / (2 * math.pi)
    kdot = (a * a + b * b) / 2 - factor * theta
    return factor * s + kdot * c, (kdot if ntk else None)


@register
@dataclasses.dataclass(frozen=True)
class ABRelu(Activation):
    """``a * min(u, 0) + b * max(u, 0)``."""

    a: float = 0.0
    b: float = 1.0

    def __post_init__(self):
        check_finite("a", self.a)
        check_finite("b", self.b)

    def function(self, x):
        return self.a * torch.clamp(x, max=0) + self.b * torch.clamp(x, min=0)

    def dual(self, c, v1, v2, ntk):
        return abrelu_dual(self.a, self.b, c, v1, v2, ntk)

    def dual_diag(self, v):
        return (self.a**2 + self.b**2) / 2 * v


@register
@dataclasses.dataclass(frozen=True)
class Relu(Activation):
    """``max(u, 0)``."""

    def function(self, x):
        return torch.relu(x)

    def dual(self, c, v1, v2, ntk):
        return abrelu_dual(0.0, 1.0, c, v1, v2, ntk)

    def dual_diag(self, v):
        return v / 2


@register
@dataclasses.dataclass(frozen=True)
class LeakyRelu(Activation):
    """``u`` for ``u > 0``, ``alpha * u`` otherwise."""

    alpha: float = 0.01

    def __post_init__(self):
        check_finite("alpha", self.alpha)

    def function(self, x):
        return torch.where(x > 0, x, self.alpha * x)

    def dual(self, c, v1, v2, ntk):
        return abrelu_dual(self.alpha, 1.0, c, v1, v2, ntk)

    def dual_diag(self, v):
        return (1 + self.alpha**2) / 2 * v


@register
@dataclasses.dataclass(frozen=True)
class Abs(Activation):
    """``|u|``."""

    def function(self, x):
        return torch.abs(x)

    def dual(self, c, v1, v2, ntk):
        return abrelu_dual(-1.0, 1.0, c, v1, v2, ntk)

    def dual_diag(self, v):
        return v


@register
@dataclasses.dataclass(frozen=True)
class Sign(Activation):
    """``sign(u)``; it contributes nothing to the NTK (its derivative vanishes a.e.)."""

    def function(self, x):
        return torch.sign(x)

    def dual(self, c, v1, v2, ntk):
        _, theta = angle(c, v1, v2)
        k = 1 - 2 * theta / math.pi
        return k, (torch.zeros_like(k) if ntk else None)

    def dual_diag(self, v):
        return (v > 0).to(v.dtype)


@register
@dataclasses.dataclass(frozen=True)
class Identity(Activation):
    """``u`` (also a no-op layer)."""

    def function(self, x):
        return x

    def dual(self, c, v1, v2, ntk):
        return c, (torch.ones_like(c) if ntk else None)

    def dual_diag(self, v):
        return v

    def kernel_step(self, state):
        return state
