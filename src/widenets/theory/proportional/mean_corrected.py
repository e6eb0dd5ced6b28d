"""One hidden layer with a non-zero-mean activation (ReLU): two order parameters (spec §3.6).

Splitting ``phi(h) = m + (phi(h) - m)``, the central-limit step of the derivation gives each
hidden unit a mean ``sbar . m`` as well as a variance, and the renormalised kernel becomes::

    K_R(a, b) = a (K_raw - m m^T) / lambda_1 + b m m^T / lambda_1,     a = Qbar, b = 1/(1 + Q)
    S(a, b)   = -a (1/b - 1) - ln b + (1/N_1) [ ln det(T + K_R) + y^T (T + K_R)^{-1} y ]

The fluctuating part is rescaled by ``Qbar``, the mean part by ``1/(1+Q)``.  For ``m = 0``
stationarity in ``b`` gives ``b = a`` and S collapses to the one-parameter action.  The
readout order parameter ``<lambda_1 |v|^2 / N_1>`` is still ``Qbar = a`` (envelope theorem on
``d ln Z / d lambda_1``).  The rank-one mean part is handled by Sherman-Morrison in the
eigenbasis of the fluctuating kernel, so each evaluation is O(P).

References: Pacelli et al. (2023), supplement eq. (105) as cited by the authors' ``deepbays``
package; re-derived in spec §3.6.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy.optimize import root

from widenets.errors import WidenetsError


@dataclasses.dataclass(frozen=True)
class MeanSplit:
    """The fluctuating kernel's eigenbasis and the mean and labels expressed in it."""

    values: np.ndarray  # eigenvalues c_i of (K_raw - m m^T) / lambda_1
    vectors: np.ndarray
    w: np.ndarray       # U^T m / sqrt(lambda_1)
    z: np.ndarray       # U^T y

    @classmethod
    def of(cls, kernel_gp: np.ndarray, mean: np.ndarray, readout_prior: float,
           y: np.ndarray) -> MeanSplit:
        w = mean / np.sqrt(readout_prior)
        fluct = kernel_gp - np.outer(w, w)
        values, vectors = np.linalg.eigh((fluct + fluct.T) / 2)
        return cls(np.clip(values, 0.0, None), vectors, vectors.T @ w, vectors.T @ y)


def _pieces(a: float, b: float, split: MeanSplit, temperature: float):
    d = temperature + a * split.values
    s_ww = float((split.w**2 / d).sum())
    s_wz = float((split.w * split.z / d).sum())
    s = 1 + b * s_ww
    return d, s_ww, s_wz, s


def action(a: float, b: float, split: MeanSplit, width: int, temperature: float) -> float:
    """``S(Qbar = a, Q = 1/b - 1)`` of spec §3.6."""
    d, _, s_wz, s = _pieces(a, b, split, temperature)
    data = np.log(d).sum() + np.log(s) + (split.z**2 / d).sum() - b * s_wz**2 / s
    return float(-a * (1 / b - 1) - np.log(b) + data / width)


def gradient(a: float, b: float, split: MeanSplit, width: int, temperature: float):
    """``(dS/da, dS/db)``."""
    d, s_ww, s_wz, s = _pieces(a, b, split, temperature)
    c, w = split.values, split.w
    trace = (c / d).sum() - b * (c * w**2 / d**2).sum() / s
    v = (split.z - b * w * s_wz / s) / d  # (T + K_R)^{-1} y in the eigenbasis
    d_a = trace - (c * v**2).sum()
    d_b = s_ww / s - s_wz**2 / s**2
    return np.array([-(1 / b - 1) + d_a / width, a / b**2 - 1 / b + d_b / width])


def solve(split: MeanSplit, width: int, temperature: float, start: float) -> tuple[float, float]:
    """The stationary point ``(Qbar, 1/(1+Q))`` (a true saddle), by Powell's hybrid method in
    log coordinates, from ``(start, start)`` (the zero-mean solution) and then from (1, 1)."""

    def residual(logs):
        a, b = np.exp(logs)
        return gradient(a, b, split, width, temperature) * np.exp(logs)

    for guess in ((start, start), (1.0, 1.0)):
        sol = root(residual, np.log(guess), method="hybr", options={"xtol": 1e-13})
        if np.all(np.isfinite(sol.x)) and np.abs(residual(sol.x)).max() < 1e-10:
            a, b = np.exp(sol.x)
            return float(a), float(b)
    raise WidenetsError("the two-parameter (mean-corrected) saddle point did not converge; "
                        "pass mean_correction=False to use the zero-mean action.")


def hessian(a: float, b: float, split: MeanSplit, width: int, temperature: float,
            step: float = 1e-6) -> np.ndarray:
    """``d^2 S`` in ``(a, b)`` by central differences of the analytic gradient."""
    h = np.empty((2, 2))
    for j, (da, db) in enumerate(((step * a, 0.0), (0.0, step * b))):
        hi = gradient(a + da, b + db, split, width, temperature)
        lo = gradient(a - da, b - db, split, width, temperature)
        h[:, j] = (hi - lo) / (2 * (da + db))
    return (h + h.T) / 2


def renormalised(kernel_gp_cross: np.ndarray, mean_x: np.ndarray, mean_y: np.ndarray,
                 readout_prior: float, a: float, b: float) -> np.ndarray:
    """``K_R(x, y)`` from ``K_GP(x, y)`` and the activation means at x and y."""
    mm = np.outer(mean_x, mean_y) / readout_prior
    return a * (kernel_gp_cross - mm) + b * mm
