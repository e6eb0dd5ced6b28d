"""Several outputs: a matrix order parameter (spec §3.7; Baglioni et al., arXiv:2412.15911).

With D outputs the readout integral gives ``det(I + Q)^(-N_1/2)``, ``Q_ab = sbar_a^T K sbar_b /
N_1``, and the conjugate order parameter ``Qbar`` is a positive ``D x D`` matrix::

    S(Qbar) = Tr Qbar - ln det Qbar + (1/N_1) [ln det(T + Qbar (x) K) + Y^T (T + Qbar (x) K)^-1 Y]

With ``Qbar = V diag(q) V^T`` and ``K = U diag(k) U^T`` the Kronecker kernel is diagonal in the
joint eigenbasis, so S is a sum over ``(i, a)`` of one-output terms in the rotated labels
``U^T Y V``.  S is minimised over Cholesky factors of ``Qbar`` by BFGS with the analytic
gradient ``I - Qbar^{-1} + (1/N_1) sum_i k_i [B_i^{-1} - B_i^{-1} z_i z_i^T B_i^{-1}]``,
``B_i = T + k_i Qbar``.  At ``T = 0`` stationarity is the matrix quadratic
``Qbar^2 - (1 - alpha) Qbar - Y^T K^{-1} Y / N_1 = 0``, solved in closed form.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import sqrtm
from scipy.optimize import minimize

from widenets.errors import WidenetsError
from widenets.theory.proportional.action import Spectrum


def _eig(qbar: np.ndarray):
    q, v = np.linalg.eigh((qbar + qbar.T) / 2)
    return q, v


def action(qbar: np.ndarray, spec: Spectrum, width: int, temperature: float) -> float:
    """``S(Qbar)`` for a positive definite ``Qbar`` (``D x D``)."""
    q, v = _eig(qbar)
    if (q <= 0).any():
        return np.inf
    k, z = _active(spec, temperature)
    zv = z @ v
    d = temperature + np.outer(k, q)
    return float(q.sum() - np.log(q).sum() + (np.log(d) + zv**2 / d).sum() / width)


def gradient(qbar: np.ndarray, spec: Spectrum, width: int, temperature: float) -> np.ndarray:
    """``dS / dQbar`` (symmetric ``D x D``)."""
    q, v = _eig(qbar)
    k, z = _active(spec, temperature)
    zv = z @ v
    inv = 1 / (temperature + np.outer(k, q))        # (P, D): diag of B_i^{-1} in basis V
    data = np.diag((k[:, None] * inv).sum(0))
    weighted = np.sqrt(k)[:, None] * inv * zv          # sqrt(k_i) B_i^{-1} z_i
    data -= weighted.T @ weighted
    inside = np.eye(len(q)) - np.diag(1 / q) + data / width
    return v @ inside @ v.T


def _active(spec: Spectrum, temperature: float):
    if temperature > 0:
        return spec.values, spec.z
    return spec.values[spec.positive], spec.z[spec.positive]


def zero_temperature(spec: Spectrum, width: int) -> np.ndarray:
    """Closed form ``Qbar = [(1 - a) I + sqrt((1 - a)^2 I + 4 Y^T K^+ Y / N_1)] / 2``."""
    k, z = _active(spec, 0.0)
    a = len(k) / width
    r = (z / k[:, None]).T @ z / width
    root = np.real(sqrtm((1 - a) ** 2 * np.eye(len(r)) + 4 * (r + r.T) / 2))
    return 0.5 * ((1 - a) * np.eye(len(r)) + root)


def solve(spec: Spectrum, width: int, temperature: float, start: np.ndarray) -> np.ndarray:
    """Minimise S over positive definite ``Qbar`` from ``start`` (BFGS on Cholesky factors)."""
    dim = len(start)
    rows, cols = np.tril_indices(dim)
    diag = rows == cols

    def unpack(theta):
        entries = theta.copy()
        entries[diag] = np.exp(theta[diag])  # positive diagonal: Qbar stays positive definite
        chol = np.zeros((dim, dim))
        chol[rows, cols] = entries
        return chol

    def objective(theta):
        chol = unpack(theta)
        qbar = chol @ chol.T
        value = action(qbar, spec, width, temperature)
        dchol = 2 * gradient(qbar, spec, width, temperature) @ chol
        grad = dchol[rows, cols] * np.where(diag, chol[rows, cols], 1.0)
        return value, grad

    chol0 = np.linalg.cholesky(start)
    theta0 = chol0[rows, cols].copy()
    theta0[diag] = np.log(theta0[diag])
    sol = minimize(objective, theta0, jac=True, method="BFGS", options={"gtol": 1e-12,
                                                                         "maxiter": 2000})
    chol = unpack(sol.x)
    qbar = chol @ chol.T
    if np.abs(gradient(qbar, spec, width, temperature)).max() > 1e-7:
        raise WidenetsError("the matrix order parameter did not converge (|dS/dQbar| = "
                            f"{np.abs(gradient(qbar, spec, width, temperature)).max():.2g}).")
    return (qbar + qbar.T) / 2
