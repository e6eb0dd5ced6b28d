"""Gaussian expectations shared by the activation layers.

For a centred pair ``(u, v)`` with covariance ``[[v1, c], [c, v2]]`` the dual kernel of an
activation is ``E[phi(u) phi(v)]``.  Closed forms use the angle ``theta = arccos(c / sqrt(v1 v2))``
(computed with ``atan2`` so the correlation is clipped into [-1, 1] and a zero-variance input
gives no NaN); everything else uses two-dimensional Gauss-Hermite quadrature in Cholesky
coordinates.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

import numpy as np
import torch

Tensor = torch.Tensor


def safe_sqrt(x: Tensor) -> Tensor:
    """Square root with negative rounding noise clipped to zero."""
    return torch.sqrt(torch.clamp(x, min=0.0))


def clip_covariance(c: Tensor, v1: Tensor, v2: Tensor) -> Tensor:
    """Clip ``c`` into ``[-sqrt(v1 v2), sqrt(v1 v2)]``, snapping correlations within a few
    rounding errors of +-1 to exactly +-1.

    Correlation 1 is a fixed point of every dual kernel, but an unstable one in the chaotic
    phase: without the snap, the rounding difference between an input's covariance with
    itself and its variance grows by chi > 1 per layer and a deep network would decorrelate
    an input from itself.
    """
    # compiled: the square roots of the per-position variances (small broadcast tensors)
    # instead of one per entry; they differ in the last bit, which the snap below absorbs
    q = torch.sqrt(v1) * torch.sqrt(v2) if torch.compiler.is_compiling() else torch.sqrt(v1 * v2)
    c = torch.maximum(torch.minimum(c, q), -q)
    near = q * q - c * c <= 4 * torch.finfo(c.dtype).eps * q * q
    return torch.where(near, torch.copysign(q, c), c)


def angle(c: Tensor, v1: Tensor, v2: Tensor) -> tuple[Tensor, Tensor]:
    """``(sqrt(v1 v2 - c^2), theta)`` with ``theta = arccos(c / sqrt(v1 v2))`` in [0, pi].

    ``v1 v2 - c^2`` within a few rounding errors of zero is set to zero: the square root
    amplifies an error of ``eps`` in the correlation to ``sqrt(eps)`` (1e-8 in float64), so
    without this an input paired with itself, whose covariance and variances were rounded
    along different paths, would not get the exact ``theta = 0``.  Where both inputs have
    zero variance the angle is set to pi/2, as neural-tangents does.
    """
    prod = v1 * v2
    s2 = prod - c * c
    s2 = torch.where(s2 <= 4 * torch.finfo(s2.dtype).eps * prod, torch.zeros_like(s2), s2)
    s = torch.sqrt(s2)
    # compiled kernels use a polynomial atan2 (it vectorises to a dozen FMAs; Sleef's atan2
    # is the most expensive operation of a CNTK layer), eager code torch's own
    theta = atan2_poly(s, c) if torch.compiler.is_compiling() else torch.atan2(s, c)
    theta = torch.where((s == 0) & (c == 0), torch.full_like(theta, math.pi / 2), theta)
    return s, theta


# atan(u) = u + u z P(z) with z = u^2 on |u| <= tan(pi/8).  float64: P of degree 9, fitted
# by Chebyshev-weighted least squares in 40-digit arithmetic (< 1 ulp on the interval);
# float32: Cephes' atanf polynomial (S. Moshier).  Lowest degree first.
_ATAN64 = (-0.3333333333333001, 0.19999999999062132, -0.14285714193373011,
           0.11111106585838057, -0.0909078100448785, 0.07690050350453657,
           -0.06640978676645641, 0.05691851840917154, -0.04357253738852811,
           0.02123880364848641)
_ATAN32 = (-3.33329491539e-1, 1.99777106478e-1, -1.38776856032e-1, 8.05374449538e-2)
_TAN_PI_8 = 0.41421356237309503


def atan2_poly(y: Tensor, x: Tensor) -> Tensor:
    """``atan2(y, x)`` by range reduction to ``|u| <= tan(pi/8)`` and a polynomial: one
    division and about a dozen multiply-adds, which compilers vectorise (within 2 ulp of
    ``torch.atan2``; tests/kernels/test_fused.py)."""
    ay, ax = y.abs(), x.abs()
    swap = ay > ax  # reduce to atan(num / den) with 0 <= num <= den
    num, den = torch.minimum(ay, ax), torch.maximum(ay, ax)
    mid = num > _TAN_PI_8 * den  # then atan(t) = pi/4 + atan((t - 1) / (t + 1))
    u = torch.where(mid, num - den, num) / torch.where(mid, num + den, den).clamp_min(
        torch.finfo(x.dtype).tiny)
    z = u * u
    p = 0.0
    for a in reversed(_ATAN64 if x.dtype == torch.float64 else _ATAN32):
        p = p * z + a
    poly = u + u * z * p
    theta = torch.where(mid, math.pi / 4 + poly, poly)
    theta = torch.where(swap, math.pi / 2 - theta, theta)
    theta = torch.where(x < 0, math.pi - theta, theta)
    return torch.copysign(theta, y)


@lru_cache(maxsize=32)
def _hermite(degree: int) -> tuple[np.ndarray, np.ndarray]:
    x, w = np.polynomial.hermite_e.hermegauss(degree)
    return x, w / w.sum()


def hermite_nodes(degree: int, like: Tensor) -> tuple[Tensor, Tensor]:
    """Probabilists' Gauss-Hermite nodes and weights summing to one (``E`` over N(0, 1))."""
    x, w = _hermite(degree)
    return (torch.as_tensor(x, dtype=like.dtype, device=like.device),
            torch.as_tensor(w, dtype=like.dtype, device=like.device))


def derivative(fn: Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
    """Elementwise derivative of an elementwise torch function, by autograd."""

    def dfn(x: Tensor) -> Tensor:
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(fn(x).sum(), x)
        return g.detach()

    return dfn


def quadrature_pair(f: Callable[[Tensor], Tensor], c: Tensor, v1: Tensor, v2: Tensor,
                    degree: int) -> Tensor:
    """``E[f(u) f(v)]`` for ``(u, v) ~ N(0, [[v1, c], [c, v2]])`` by 2-D Gauss-Hermite quadrature.

    Writes ``u = sqrt(v1) x``, ``v = a x + b y`` with ``a = c / sqrt(v1)``,
    ``b = sqrt(v2 - a^2)`` and ``x, y`` independent standard normals (tensor-product rule,
    ``degree**2`` evaluations per entry; exact for polynomials of degree ``2 degree - 1``).
    """
    c, v1, v2 = torch.broadcast_tensors(c, v1, v2)
    x, w = hermite_nodes(degree, c)
    s1 = safe_sqrt(v1)
    a = torch.where(s1 > 0, c / torch.where(s1 > 0, s1, torch.ones_like(s1)),
                    torch.zeros_like(c))
    b = safe_sqrt(v2 - a * a)
    inner_axis = c.ndim
    total = torch.zeros_like(c)
    for xi, wi in zip(x, w, strict=True):
        v = (a * xi).unsqueeze(-1) + b.unsqueeze(-1) * x
        inner = (f(v) * w).sum(dim=inner_axis)
        total += wi * f(s1 * xi) * inner
    return total


def quadrature_diag(f: Callable[[Tensor], Tensor], v: Tensor, degree: int) -> Tensor:
    """``E[f(u)^2]`` for ``u ~ N(0, v)`` by 1-D Gauss-Hermite quadrature."""
    x, w = hermite_nodes(degree, v)
    values = f(safe_sqrt(v).unsqueeze(-1) * x)
    return (values * values * w).sum(dim=-1)
