"""Deep networks: one order parameter per hidden layer, product renormalisation (spec §4).

With ``u = prod_l Qbar_l`` and the depth-L NNGP kernel ``K = K_GP``::

    F(Qbar_1 .. Qbar_L) = sum_l N_l (Qbar_l - ln Qbar_l) + ln det(T + u K) + y^T (T + u K)^{-1} y

(exact for linear networks, spec §4.1; the paper's approximation for ReLU, whose kernel is
homogeneous so the nested and product forms agree, §4.3).  Stationarity gives
``Qbar_l = 1 - u g(u) / N_l`` with ``g`` the derivative of the data term, i.e. one scalar
equation ``psi(u) = ln u - sum_l ln(1 - u g(u) / N_l) = 0`` on the set where every
``Qbar_l > 0``.  It is bracketed on a log grid in ``u`` and refined by Brent's method; among
the roots that are minima of F the lowest F is kept.  This is deliberately a different code
path from :func:`.action.solve_one_hidden_layer`, so that ``L = 1`` is a real test.

The reported action is ``F / N_L`` (= S of spec §3.2 for one hidden layer) and the curvature
its Hessian in the ``Qbar_l``.

References: Pacelli et al. (2023), deep networks; Li & Sompolinsky, PRX 11, 031059 (2021),
back-propagating kernel renormalisation (their ``u_l = sigma^2 Qbar_l``).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy.optimize import brentq

from widenets.errors import WidenetsError, WidenetsWarning
from widenets.theory.proportional.action import (
    GRID,
    Saddle,
    Spectrum,
    data_derivatives,
    data_term,
)


def free_energy(qbars, spec: Spectrum, widths, temperature: float) -> float:
    """``F(Qbar_1 .. Qbar_L)`` (spec §4.1)."""
    qbars = np.asarray(qbars, dtype=np.float64)
    widths = np.asarray(widths, dtype=np.float64)
    u = float(np.prod(qbars))
    return float((widths * (qbars - np.log(qbars))).sum() + data_term(u, spec, temperature))


def order_parameters(u: float, spec: Spectrum, widths, temperature: float) -> np.ndarray:
    """``Qbar_l = 1 - u g(u) / N_l`` for a given total renormalisation ``u``."""
    g = data_derivatives(u, spec, temperature)[0]
    return 1 - u * g / np.asarray(widths, dtype=np.float64)


def solve_deep(spec: Spectrum, widths, temperature: float) -> Saddle:
    """The saddle point of ``F`` over ``Qbar_1 .. Qbar_L > 0`` (any T >= 0).

    Raises
    ------
    WidenetsError
        If no stationary point is bracketed for ``u`` in ``[1e-8, 1e8]``.
    Warns
    -----
    WidenetsWarning
        If two minima have nearly equal ``F``.
    """
    widths = np.asarray(widths, dtype=np.float64)

    def psi(logu):
        u = math.exp(logu)
        q = order_parameters(u, spec, widths, temperature)
        if (q <= 0).any():
            return math.inf  # beyond the boundary where some Qbar_l -> 0+: psi -> +inf
        return logu - float(np.log(q).sum())

    logs = np.log(GRID)
    values = np.array([psi(s) for s in logs])
    candidates = []
    for i in np.flatnonzero((values[:-1] < 0) & (values[1:] >= 0)):
        hi = logs[i + 1]
        if not math.isfinite(values[i + 1]):  # shrink the bracket onto the feasible side
            hi = _last_finite(psi, logs[i], hi)
            if psi(hi) < 0:
                continue
        s = brentq(psi, logs[i], hi, xtol=1e-15, rtol=1e-15, maxiter=200)
        q = order_parameters(math.exp(s), spec, widths, temperature)
        if _is_minimum(q, spec, widths, temperature):
            candidates.append((free_energy(q, spec, widths, temperature), tuple(q)))
    if not candidates:
        raise WidenetsError("no saddle point of the deep effective action for u = prod Qbar_l "
                            "in [1e-8, 1e8]; the kernel or labels are degenerate.")
    candidates.sort()
    if len(candidates) > 1 and (candidates[1][0] - candidates[0][0]) / widths[-1] < 1e-6:
        warnings.warn("the deep effective action has two minima with nearly equal values; "
                      "the lower is used", WidenetsWarning, stacklevel=3)
    q = np.array(candidates[0][1])
    return Saddle(tuple(float(v) for v in q), candidates[0][0] / widths[-1],
                  hessian(q, spec, widths, temperature) / widths[-1])


def _last_finite(psi, lo: float, hi: float) -> float:
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if math.isfinite(psi(mid)):
            lo = mid
        else:
            hi = mid
    return lo


def hessian(q: np.ndarray, spec: Spectrum, widths: np.ndarray, temperature: float):
    """``d^2 F / dQbar_l dQbar_m`` at ``q`` (``L x L``)."""
    u = float(np.prod(q))
    g, dg = data_derivatives(u, spec, temperature)
    outer = np.outer(u / q, u / q)
    h = (dg * outer + g * outer / u) * (1 - np.eye(len(q)))
    h += np.diag(widths / q**2 + dg * (u / q) ** 2)
    return h


def _is_minimum(q, spec, widths, temperature) -> bool:
    # in log coordinates the Hessian is diag(N_l Qbar_l) + G''(ln u) 11^T, positive definite
    # iff 1 + G'' sum_l 1/(N_l Qbar_l) > 0 (matrix determinant lemma)
    u = float(np.prod(q))
    g, dg = data_derivatives(u, spec, temperature)
    second = u * g + u * u * dg
    return 1 + second * float((1 / (widths * q)).sum()) > 0


def equal_width_zero_temperature(alpha: float, r: float, depth: int) -> float:
    """Root of ``Qbar^L (Qbar - 1 + alpha) = alpha r`` (spec §4.2, equal widths, T = 0)."""
    def f(q):
        return depth * math.log(q) + math.log(q - (1 - alpha)) - math.log(alpha * r)

    lo = max(1 - alpha, 0.0) * (1 + 1e-12) + 1e-300  # f -> -inf at the lower end
    hi = 2.0 + 2 * r
    while f(hi) < 0:
        hi *= 2
    return brentq(f, lo, hi, xtol=1e-15, rtol=1e-15)
