"""Polynomial and rectified-monomial activations.

* ``Polynomial(coefficients) = sum_k p_k u^k`` (``Monomial(d) = u^d``).  Expanding
  ``p(sqrt(v) x)`` in Hermite polynomials, ``E[He_l(x) He_m(y)] = delta_lm l! rho^l`` gives
  (Mehler's formula; Daniely et al. 2016, Lemma 11)::

      E[p(u) p(v)] = sum_l l! b_l(K11) b_l(K22) K12^l,
      b_l(v) = sum_i p_{l+2i} (l+2i)! / (2^i i! l!) v^i

  and the same with the coefficients of ``p'`` for the NTK.
* ``RectifiedMonomial(d) = 1[u >= 0] u^d``: the arc-cosine kernel of degree d (Cho & Saul
  2009, eq. 6), ``E = (K11 K22)^{d/2} J_d(theta) / (2 pi)`` with
  ``J_d = P_d(cos theta) sin theta + Q_d(cos theta) (pi - theta)``, where (our derivation from
  ``J_d = sin^{2d+1} theta (d/dt)^d [(pi - arccos t) / sqrt(1 - t^2)]``)::

      P_0 = 0, Q_0 = 1,
      P_{d+1} = (1 - t^2) P_d' + 2 d t P_d + Q_d,    Q_{d+1} = (1 - t^2) Q_d' + (2d + 1) t Q_d

  Because ``P_d`` and ``Q_d`` have the parities of ``d - 1`` and ``d``, the factor
  ``(K11 K22)^{d/2}`` combines with them into polynomials in ``K12`` and ``K11 K22``: no
  division, hence no NaN for zero-variance inputs.
"""

from __future__ import annotations

import dataclasses
import math
from functools import lru_cache

import numpy as np
import torch
from numpy.polynomial import polynomial as npoly

from widenets.errors import HyperparameterError, expected
from widenets.kernels.gaussian import angle
from widenets.layers.activation import Activation
from widenets.layers.base import check_finite, register


def hermite_dual(coefficients: tuple[float, ...], c, v1, v2):
    """``E[p(u) p(v)]`` for the polynomial with ascending ``coefficients``."""
    n = len(coefficients)
    total = torch.zeros_like(c + v1 + v2)
    for l in range(n):
        b1 = torch.zeros_like(v1)
        b2 = torch.zeros_like(v2)
        for i in reversed(range((n - 1 - l) // 2 + 1)):
            coef = coefficients[l + 2 * i] * math.factorial(l + 2 * i) / (
                2**i * math.factorial(i) * math.factorial(l))
            b1 = b1 * v1 + coef
            b2 = b2 * v2 + coef
        total = total + math.factorial(l) * b1 * b2 * c**l
    return total


@register
@dataclasses.dataclass(frozen=True)
class Polynomial(Activation):
    """``coefficients[0] + coefficients[1] u + ... + coefficients[n] u^n``."""

    coefficients: tuple[float, ...] = (0.0, 1.0)

    def __post_init__(self):
        coefficients = tuple(self.coefficients)
        for value in coefficients:
            check_finite("coefficients", value)
        object.__setattr__(self, "coefficients", coefficients)

    def function(self, x):
        out = torch.zeros_like(x)
        for coef in reversed(self.coefficients):
            out = out * x + coef
        return out

    def dual(self, c, v1, v2, ntk):
        k = hermite_dual(self.coefficients, c, v1, v2)
        if not ntk:
            return k, None
        derivative = tuple(i * p for i, p in enumerate(self.coefficients))[1:]
        return k, hermite_dual(derivative, c, v1, v2)


@register
@dataclasses.dataclass(frozen=True)
class Monomial(Activation):
    """``u ** degree``."""

    degree: int = 2

    def __post_init__(self):
        if isinstance(self.degree, bool) or not isinstance(self.degree, int) or self.degree < 0:
            raise HyperparameterError(expected("degree", "an int >= 0", repr(self.degree)))

    def function(self, x):
        return x**self.degree

    def dual(self, c, v1, v2, ntk):
        return Polynomial((0.0,) * self.degree + (1.0,)).dual(c, v1, v2, ntk)


@lru_cache(maxsize=64)
def _arccos_polynomials(degree: int) -> tuple[np.ndarray, np.ndarray]:
    p, q = np.zeros(1), np.ones(1)
    one_minus_t2 = np.array([1.0, 0.0, -1.0])
    t = np.array([0.0, 1.0])
    for d in range(degree):
        p, q = (npoly.polyadd(npoly.polyadd(npoly.polymul(one_minus_t2, npoly.polyder(p)),
                                            2 * d * npoly.polymul(t, p)), q),
                npoly.polyadd(npoly.polymul(one_minus_t2, npoly.polyder(q)),
                              (2 * d + 1) * npoly.polymul(t, q)))
    return p, q


def _homogeneous(coefficients: np.ndarray, total_degree: int, c, q2):
    """``sum_j a_j c^j q^(D - j)`` for a polynomial of parity D, as a polynomial in c and q^2."""
    out = torch.zeros_like(c + q2)
    for j, a in enumerate(coefficients):
        if a != 0 and (total_degree - j) % 2 == 0 and j <= total_degree:
            out = out + float(a) * c**j * q2 ** ((total_degree - j) // 2)
    return out


def arccos_kernel(degree: int, c, v1, v2):
    """``E[1(u>=0) u^d 1(v>=0) v^d]`` (Cho & Saul 2009)."""
    s, theta = angle(c, v1, v2)
    p, q = _arccos_polynomials(degree)
    q2 = v1 * v2
    return (_homogeneous(p, degree - 1, c, q2) * s
            + _homogeneous(q, degree, c, q2) * (math.pi - theta)) / (2 * math.pi)


@register
@dataclasses.dataclass(frozen=True)
class RectifiedMonomial(Activation):
    """``u ** degree`` for ``u >= 0``, else 0 (``degree=0``: the step, ``1``: ReLU)."""

    degree: int = 1

    def __post_init__(self):
        Monomial.__post_init__(self)

    def function(self, x):
        return (x >= 0).to(x.dtype) * x**self.degree

    def dual(self, c, v1, v2, ntk):
        k = arccos_kernel(self.degree, c, v1, v2)
        if not ntk:
            return k, None
        if self.degree == 0:
            return k, torch.zeros_like(k)
        return k, self.degree**2 * arccos_kernel(self.degree - 1, c, v1, v2)

    def dual_diag(self, v):
        return math.prod(range(1, 2 * self.degree, 2)) * v**self.degree / 2
