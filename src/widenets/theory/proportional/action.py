"""The one-hidden-layer effective action and its saddle point (spec §3.2-3.3).

In the eigenbasis of the NNGP kernel, ``K_GP = U diag(k) U^T``, ``z = U^T y``::

    S(Qbar) = Qbar - ln Qbar + (1/N_1) sum_i [ ln(T + Qbar k_i) + z_i^2 / (T + Qbar k_i) ]

so every evaluation is O(P) after one ``eigh``.  The saddle point is the minimum of S on
``Qbar > 0`` (S -> +inf at both ends): the sign changes of ``Qbar dS/dQbar`` are bracketed on a
log grid and refined by Brent's method, and the root with the lowest S is kept.  At ``T = 0``
the stationarity condition is the quadratic ``Qbar^2 - (1 - alpha) Qbar - alpha r = 0``.

References: Pacelli et al., Nat. Mach. Intell. 5, 1497 (2023), the 1HL action and its
saddle point; Li & Sompolinsky, PRX 11, 031059 (2021) for the linear case.
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
from scipy.optimize import brentq

from widenets.errors import NotPositiveDefiniteError, WidenetsError, WidenetsWarning

GRID = np.logspace(-8, 8, 321)  # the bracketing grid of spec §3.3


@dataclasses.dataclass(frozen=True)
class Spectrum:
    """Eigen-decomposition of a train kernel and the labels in its eigenbasis.

    ``values`` (P,), ``vectors`` (P, P), ``z`` (P, D) = ``vectors.T @ y``; ``rank_tol`` is the
    eigenvalue below which the kernel counts as singular (numpy's ``pinv`` default).
    """

    values: np.ndarray
    vectors: np.ndarray
    z: np.ndarray
    rank_tol: float

    @classmethod
    def of(cls, kernel: np.ndarray, y: np.ndarray) -> Spectrum:
        kernel = (kernel + kernel.T) / 2  # eigh reads one triangle; symmetrise rounding noise
        values, vectors = np.linalg.eigh(kernel)
        top = max(float(values[-1]), 0.0)
        if values[0] < -1e-8 * max(top, 1e-300) * len(values):
            raise NotPositiveDefiniteError(
                f"the NNGP kernel has a negative eigenvalue {values[0]:.3g} (largest "
                f"{top:.3g}): the inputs or priors give an invalid kernel.")
        tol = top * len(values) * np.finfo(np.float64).eps
        # rounding-level eigenvalues are an exact null space (else, with a small T, a
        # 1e-17 "eigenvalue" times a label component would masquerade as signal)
        values = np.where(values > tol, values, 0.0)
        y = y.reshape(len(y), -1)
        return cls(values, vectors, vectors.T @ y, tol)

    @property
    def z2(self) -> np.ndarray:
        """Squared label components summed over outputs, ``(P,)``."""
        return (self.z**2).sum(1)

    @property
    def positive(self) -> np.ndarray:
        return self.values > self.rank_tol

    def r(self) -> float:
        """``r = y^T K^+ y / P`` (pseudo-inverse on the numerical range), spec §3.3."""
        pos = self.positive
        return float((self.z2[pos] / self.values[pos]).sum() / len(self.values))


@dataclasses.dataclass(frozen=True)
class Saddle:
    """A solved saddle point: the order parameters, the action and its curvature."""

    qbar: tuple[float, ...]
    action: float
    curvature: np.ndarray


def data_term(q, spec: Spectrum, temperature: float):
    """``ln det(T + q K) + y^T (T + q K)^{-1} y`` (null-space terms dropped at T = 0).

    ``q`` may be an array; the result has its shape.
    """
    k, z2 = _active(spec, temperature)
    d = temperature + np.multiply.outer(q, k)
    return (np.log(d) + z2 / d).sum(-1)


def data_derivatives(q, spec: Spectrum, temperature: float):
    """First and second derivatives of :func:`data_term` in ``q``.

    ``g(q) = Tr[(T + qK)^{-1} K] - y^T (T + qK)^{-1} K (T + qK)^{-1} y`` and ``g'(q)``.
    """
    k, z2 = _active(spec, temperature)
    d = temperature + np.multiply.outer(q, k)
    g = (k / d - z2 * k / d**2).sum(-1)
    dg = (-(k**2) / d**2 + 2 * z2 * k**2 / d**3).sum(-1)
    return g, dg


def _active(spec: Spectrum, temperature: float):
    if temperature > 0:
        return spec.values, spec.z2
    pos = spec.positive
    return spec.values[pos], spec.z2[pos]


def action(q, spec: Spectrum, width: int, temperature: float):
    """``S(Qbar)`` of spec §3.2 (eigenbasis form; vectorised over ``q``)."""
    q = np.asarray(q, dtype=np.float64)
    return q - np.log(q) + data_term(q, spec, temperature) / width


def solve_one_hidden_layer(spec: Spectrum, width: int, temperature: float) -> Saddle:
    """Minimise ``S`` on ``Qbar > 0`` by bracketing + Brent (any T >= 0).

    Raises
    ------
    WidenetsError
        If no stationary point is bracketed on ``[1e-8, 1e8]``.
    Warns
    -----
    WidenetsWarning
        If two local minima have actions within ``1e-6`` (the saddle point is ambiguous).
    """

    def f(logq):  # Qbar dS/dQbar: -1 at Qbar -> 0, +inf at Qbar -> inf
        q = math.exp(logq)
        return q - 1 + q * data_derivatives(q, spec, temperature)[0] / width

    values = GRID - 1 + GRID * data_derivatives(GRID, spec, temperature)[0] / width
    logs = np.log(GRID)
    minima = []
    for i in np.flatnonzero((values[:-1] < 0) & (values[1:] >= 0)):  # - to +: a minimum
        q = math.exp(brentq(f, logs[i], logs[i + 1], xtol=1e-15, rtol=1e-15, maxiter=200))
        minima.append((float(action(q, spec, width, temperature)), q))
    if not minima:
        raise WidenetsError("no saddle point of the effective action in Qbar in [1e-8, 1e8]; "
                            "the kernel or labels are degenerate.")
    minima.sort()
    if len(minima) > 1 and minima[1][0] - minima[0][0] < 1e-6:
        warnings.warn(f"the effective action has two minima with nearly equal actions "
                      f"(Qbar = {minima[0][1]:.6g} and {minima[1][1]:.6g}); the lower is used",
                      WidenetsWarning, stacklevel=3)
    return _saddle(minima[0][1], spec, width, temperature)


def _saddle(q: float, spec: Spectrum, width: int, temperature: float) -> Saddle:
    dg = data_derivatives(q, spec, temperature)[1]
    return Saddle((q,), float(action(q, spec, width, temperature)),
                  np.array([[1 / q**2 + dg / width]]))


def zero_temperature_qbar(spec: Spectrum, width: int) -> float:
    """Closed form at ``T = 0`` (spec §3.3), with ``rank(K)`` in place of ``P`` when singular.

    ``Qbar = [(1 - a) + sqrt((1 - a)^2 + 4 b)] / 2`` with ``a = rank(K)/N_1`` and
    ``b = y^T K^+ y / N_1`` (``a = alpha_1``, ``b = alpha_1 r`` for full-rank ``K``).
    """
    pos = spec.positive
    a = pos.sum() / width
    b = float((spec.z2[pos] / spec.values[pos]).sum()) / width
    return float(0.5 * ((1 - a) + math.sqrt((1 - a) ** 2 + 4 * b)))


def solve_zero_temperature(spec: Spectrum, width: int) -> Saddle:
    """The ``T = 0`` saddle point in closed form."""
    return _saddle(zero_temperature_qbar(spec, width), spec, width, 0.0)
