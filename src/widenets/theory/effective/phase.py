"""Away from criticality: fixed points, correlation depths and the phase diagram.

For given ``(C_b, C_W)`` the single-input kernel flows from ``K^{(1)} = C_b + C_W q``
(``q = |x|^2 / n0``) to the fixed point of ``K -> C_b + C_W <sigma^2>_K`` in the direction of
the flow (or to 0 or infinity).  There ``chi_par`` sets how fast the kernel itself converges
and ``chi_perp`` how fast the angle between two inputs does; their correlation depths are
``xi = 1 / |log chi|`` (PDLT §5.1, §5.3; effective_theory.md §3.1-3.2).  ``chi_perp < 1`` is the
ordered phase, ``chi_perp > 1`` the chaotic one; ``chi_par = chi_perp = 1`` is criticality.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.interpolate import CubicSpline
from scipy.optimize import brentq

from widenets.errors import HyperparameterError, expected
from widenets.theory.effective import single
from widenets.theory.effective.activations import ActivationInfo, check_activation

K_MIN, K_MAX = 1e-8, 1e8


@dataclass(frozen=True)
class FixedPoint:
    """Where the kernel of a deep network with ``(C_b, C_W)`` goes, and how fast.

    Attributes
    ----------
    fixed_point : float
        ``K*`` (0 or ``inf`` when the kernel decays or grows without bound).
    chi_parallel, chi_perpendicular : float
        Susceptibilities at ``K*`` (their limits ``C_W sigma'(0)^2`` for ``K* = 0``; at
        ``K = 1e8`` when the kernel grows without bound).
    depth_parallel, depth_perpendicular : float
        Correlation depths ``1 / |log chi|`` (``inf`` at chi = 1).
    phase : str
        ``"ordered"`` (chi_perp < 1), ``"chaotic"`` (chi_perp > 1) or ``"critical"``.
    """

    fixed_point: float
    chi_parallel: float
    chi_perpendicular: float
    depth_parallel: float
    depth_perpendicular: float
    phase: str


def _depth(chi: float) -> float:
    return math.inf if chi <= 0 or abs(math.log(chi)) < 1e-12 else 1 / abs(math.log(chi))


def _classify(k: float, chi_par: float, chi_perp: float) -> FixedPoint:
    if abs(chi_perp - 1) < 1e-9 and abs(chi_par - 1) < 1e-9:
        phase = "critical"
    else:
        phase = "ordered" if chi_perp < 1 else "chaotic"
    chi_par, chi_perp = float(chi_par), float(chi_perp)
    return FixedPoint(float(k), chi_par, chi_perp, _depth(chi_par), _depth(chi_perp), phase)


def fixed_point(activation, bias_var: float, weight_var: float,
                input_var: float = 1.0) -> FixedPoint:
    """The fixed point reached from ``K^{(1)} = C_b + C_W q`` and its correlation depths."""
    info = ActivationInfo(check_activation(activation))

    def h(k: float) -> float:
        return bias_var + weight_var * single.moments(info, k)["s2"] - k

    k = bias_var + weight_var * input_var
    if k <= 0:
        raise HyperparameterError(expected("bias_var + weight_var * input_var",
                                           "> 0 (the first-layer kernel K^(1))", k))
    end = _flow_end(h, k)
    if end == 0.0 and info.homogeneous_slopes() is None:
        # K -> 0: both susceptibilities tend to C_W sigma'(0)^2 (smooth sigma)
        chi = weight_var * info.taylor(1)[1] ** 2
        return _classify(end, chi, chi)
    at = min(max(end, K_MIN), K_MAX)
    mo = single.moments(info, at)
    return _classify(end, weight_var * mo["s2z2"] / (2 * at * at), weight_var * mo["d2"])


def _flow_end(h, k: float) -> float:
    """Follow the sign of ``h`` from ``k`` to the first root in the flow direction."""
    hk = h(k)
    if abs(hk) <= 1e-13 * k:
        return k
    step = 2.0 if hk > 0 else 0.5
    while K_MIN < k < K_MAX:
        nxt = k * step
        if (h(nxt) > 0) != (hk > 0):
            lo, hi = sorted((k, nxt))
            return brentq(h, lo, hi, xtol=1e-300, rtol=1e-14)
        k = nxt
    return math.inf if step > 1 else 0.0


@dataclass(frozen=True)
class PhaseDiagram:
    """``chi_par`` and ``chi_perp`` at the fixed point over a ``(C_b, C_W)`` grid.

    Arrays have shape ``(len(weight_vars), len(bias_vars))``.  Values come from a cubic spline
    of ``<sigma^2>``, ``<sigma^2 (z^2 - K)>/K^2`` and ``<sigma'^2>`` in ``log K`` on 401
    points in [1e-8, 1e8] (relative interpolation error below 1e-6): fine for a figure;
    use :func:`fixed_point` for exact values.
    """

    bias_vars: np.ndarray
    weight_vars: np.ndarray
    fixed_point: np.ndarray
    chi_parallel: np.ndarray
    chi_perpendicular: np.ndarray


def phase_diagram(activation, bias_vars, weight_vars, input_var: float = 1.0) -> PhaseDiagram:
    """Susceptibilities at the fixed point for every ``(C_b, C_W)`` on a grid."""
    info = ActivationInfo(check_activation(activation))
    log_k = np.linspace(math.log(K_MIN), math.log(K_MAX), 401)
    ks = np.exp(log_k)
    table = [single.moments(info, float(k), rtol=1e-10) for k in ks]
    s2 = CubicSpline(log_k, [t["s2"] / k for t, k in zip(table, ks, strict=True)])
    par = CubicSpline(log_k, [t["s2z2"] / (2 * k * k) for t, k in zip(table, ks, strict=True)])
    perp = CubicSpline(log_k, [t["d2"] for t in table])
    bias_vars, weight_vars = np.asarray(bias_vars, float), np.asarray(weight_vars, float)
    shape = (len(weight_vars), len(bias_vars))
    kstar, chi_par, chi_perp = np.empty(shape), np.empty(shape), np.empty(shape)
    for i, cw in enumerate(weight_vars):
        for j, cb in enumerate(bias_vars):
            def h(k, cb=cb, cw=cw):
                return cb + cw * k * float(s2(math.log(k))) - k

            end = _flow_end(h, cb + cw * input_var)
            at = math.log(min(max(end, K_MIN), K_MAX))
            kstar[i, j] = end
            chi_par[i, j] = cw * float(par(at))
            chi_perp[i, j] = cw * float(perp(at))
    return PhaseDiagram(bias_vars, weight_vars, kstar, chi_par, chi_perp)
