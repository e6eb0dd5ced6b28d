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
    q = torch.sqrt(v1 * v2)
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
    # compiled kernels use a rational atan2 (vectorises to a few FMAs; Sleef's atan2 is the
    # single most expensive operation of a CNTK layer), eager code torch's own
    theta = atan2_rational(s, c) if torch.compiler.is_compiling() else torch.atan2(s, c)
    theta = torch.where((s == 0) & (c == 0), torch.full_like(theta, math.pi / 2), theta)
    return s, theta


# Cephes' atan (S. Moshier): on |u| <= 0.66 (float64) atan(u) = u + u z P(z)/Q(z), z = u^2,
# relative error below 2e-16; on |u| <= tan(pi/8) (float32) a degree-4 polynomial in z.
_ATAN_P = (-8.750608600031904122785e-1, -1.615753718733365076637e1,
           -7.500855792314704667340e1, -1.228866684490136173410e2, -6.485021904942025371773e1)
_ATAN_Q = (2.485846490142306297962e1, 1.650270098316988542046e2, 4.328810604912902668951e2,
           4.853903996359136964868e2, 1.945506571482613964425e2)
_ATANF = (8.05374449538e-2, -1.38776856032e-1, 1.99777106478e-1, -3.33329491539e-1)


def atan2_rational(y: Tensor, x: Tensor) -> Tensor:
    """``atan2(y, x)`` from Cephes' rational ``atan`` and range reduction: two divisions and
    a dozen multiply-adds, which compilers vectorise (within 2 ulp of ``torch.atan2``; see
    tests/kernels/test_fused.py)."""
    ay, ax = y.abs(), x.abs()
    swap = ay > ax  # reduce to atan(num / den) with 0 <= num <= den
    num, den = torch.minimum(ay, ax), torch.maximum(ay, ax)
    split = 0.66 if x.dtype == torch.float64 else 0.41421356237309503
    mid = num > split * den  # then atan(t) = pi/4 + atan((t - 1) / (t + 1))
    u = torch.where(mid, num - den, num) / torch.where(mid, num + den, den).clamp_min(
        torch.finfo(x.dtype).tiny)
    z = u * u
    if x.dtype == torch.float64:
        p, q = 0.0, 1.0  # Q is monic
        for a in _ATAN_P:
            p = p * z + a
        for b in _ATAN_Q:
            q = q * z + b
        poly = u + u * z * p / q
    else:
        p = 0.0
        for a in _ATANF:
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
