"""Smooth activations with closed-form dual kernels.

* ``Erf(a, b, c) = a erf(b u) + c`` (Williams 1997, eq. 11)::

      E = a^2 (2/pi) arcsin(2 b^2 K12 / sqrt((1 + 2 b^2 K11)(1 + 2 b^2 K22))) + c^2
      E' = a^2 b^2 (4/pi) / sqrt((1 + 2 b^2 K11)(1 + 2 b^2 K22) - 4 b^4 K12^2)

* ``Gelu = u Phi(u)`` (Tsuchida et al. 2021, "Avoiding kernel fixed points", Thm. 2; the
  form used by neural-tangents' ``Gelu``).
* ``Sin(a, b, c) = a sin(b u + c)``: ``E = a^2/2 [e^{-b^2 (K11 + K22 - 2 K12)/2}
  - cos(2c) e^{-b^2 (K11 + K22 + 2 K12)/2}]`` and the derivative kernel with ``+``.
  ``Cos(a, b, c) = Sin(a, b, c + pi/2)``; ``Rbf(gamma) = sqrt(2) sin(sqrt(2 gamma) u + pi/4)``
  whose NNGP is ``exp(-gamma (K11 + K22 - 2 K12))`` (Rahimi & Recht 2007).
* ``Exp(a, b) = a e^{b u}``: ``E = a^2 exp(b^2 (K11 + K22 + 2 K12) / 2)``.
* ``Gaussian(a, b) = a e^{b u^2}``: ``E = a^2 / sqrt((1 - 2b K11)(1 - 2b K22) - 4 b^2 K12^2)``.
"""

from __future__ import annotations

import dataclasses
import math

import torch

from widenets.errors import InputValueError
from widenets.kernels.gaussian import safe_sqrt
from widenets.layers.activation import Activation
from widenets.layers.base import check_finite, check_std, register


def _check_fields(layer, *names):
    for name in names:
        check_finite(name, getattr(layer, name))


@register
@dataclasses.dataclass(frozen=True)
class Erf(Activation):
    """``a * erf(b * u) + c``."""

    a: float = 1.0
    b: float = 1.0
    c: float = 0.0

    def __post_init__(self):
        _check_fields(self, "a", "b", "c")

    def function(self, x):
        return self.a * torch.erf(self.b * x) + self.c

    def dual(self, c, v1, v2, ntk):
        b2 = self.b**2
        root = safe_sqrt((1 + 2 * b2 * v1) * (1 + 2 * b2 * v2) - 4 * b2 * b2 * c * c)
        k = self.a**2 * (2 / math.pi) * torch.atan2(2 * b2 * c, root) + self.c**2
        return k, (self.a**2 * b2 * (4 / math.pi) / root if ntk else None)

    def dual_diag(self, v):
        b2v = self.b**2 * v
        return self.a**2 * (2 / math.pi) * torch.asin(2 * b2v / (1 + 2 * b2v)) + self.c**2


@register
@dataclasses.dataclass(frozen=True)
class Gelu(Activation):
    """``u * Phi(u)`` with the exact normal CDF."""

    def function(self, x):
        return torch.nn.functional.gelu(x)

    def dual(self, c, v1, v2, ntk):
        prod = v1 * v2
        prod1 = (1 + v1) * (1 + v2)
        delta2 = prod1 - c * c
        delta = safe_sqrt(delta2)
        angles = torch.atan2(c, delta)
        k = ((c * c + prod * delta2) / (prod1 * delta) + c * angles) / (2 * math.pi) + c / 4
        if not ntk:
            return k, None
        kdot = (c / (2 * math.pi * delta) * (1 / delta2 + (1 - prod) / prod1 + 1)
                + 0.25 + angles / (2 * math.pi))
        return k, kdot


def _sin_dual(a, b, phase, c, v1, v2, ntk):
    half = (v1 + v2) / 2
    s1 = torch.exp(b * b * (c - half))
    s2 = torch.exp(-b * b * (c + half)) * math.cos(2 * phase)
    k = a * a / 2 * (s1 - s2)
    return k, (a * a * b * b / 2 * (s1 + s2) if ntk else None)


@register
@dataclasses.dataclass(frozen=True)
class Sin(Activation):
    """``a * sin(b * u + c)``."""

    a: float = 1.0
    b: float = 1.0
    c: float = 0.0

    def __post_init__(self):
        _check_fields(self, "a", "b", "c")

    def function(self, x):
        return self.a * torch.sin(self.b * x + self.c)

    def dual(self, c, v1, v2, ntk):
        return _sin_dual(self.a, self.b, self.c, c, v1, v2, ntk)


@register
@dataclasses.dataclass(frozen=True)
class Cos(Activation):
    """``a * cos(b * u + c)``."""

    a: float = 1.0
    b: float = 1.0
    c: float = 0.0

    def __post_init__(self):
        _check_fields(self, "a", "b", "c")

    def function(self, x):
        return self.a * torch.cos(self.b * x + self.c)

    def dual(self, c, v1, v2, ntk):
        return _sin_dual(self.a, self.b, self.c + math.pi / 2, c, v1, v2, ntk)


@register
@dataclasses.dataclass(frozen=True)
class Rbf(Activation):
    """``sqrt(2) sin(sqrt(2 gamma) u + pi/4)``: NNGP ``exp(-gamma (K11 + K22 - 2 K12))``."""

    gamma: float = 1.0

    def __post_init__(self):
        check_std("gamma", self.gamma)

    def function(self, x):
        return math.sqrt(2) * torch.sin(math.sqrt(2 * self.gamma) * x + math.pi / 4)

    def dual(self, c, v1, v2, ntk):
        k = torch.exp(self.gamma * (2 * c - v1 - v2))
        return k, (2 * self.gamma * k if ntk else None)


@register
@dataclasses.dataclass(frozen=True)
class Exp(Activation):
    """``a * exp(b * u)``."""

    a: float = 1.0
    b: float = 1.0

    def __post_init__(self):
        _check_fields(self, "a", "b")

    def function(self, x):
        return self.a * torch.exp(self.b * x)

    def dual(self, c, v1, v2, ntk):
        k = self.a**2 * torch.exp(self.b**2 * ((v1 + v2) / 2 + c))
        return k, (self.b**2 * k if ntk else None)


@register
@dataclasses.dataclass(frozen=True)
class Gaussian(Activation):
    """``a * exp(b * u^2)``; the expectation is finite only while ``4 b Var(u) < 1``."""

    a: float = 1.0
    b: float = -1.0

    def __post_init__(self):
        _check_fields(self, "a", "b")

    def function(self, x):
        return self.a * torch.exp(self.b * x * x)

    def dual(self, c, v1, v2, ntk):
        if self.b > 0 and bool(((1 - 4 * self.b * torch.maximum(v1, v2)) <= 0).any()):
            raise InputValueError(
                f"Gaussian(b={self.b}): E[exp(2 b u^2)] diverges for pre-activation variances "
                f">= 1/(4b) = {1 / (4 * self.b):.4g}; use b <= 0 or smaller weight_std.")
        det = safe_sqrt((1 - 2 * self.b * v1) * (1 - 2 * self.b * v2) - 4 * self.b**2 * c * c)
        k = self.a**2 / det
        return k, (self.a**2 * 4 * self.b**2 * c / det**3 if ntk else None)
