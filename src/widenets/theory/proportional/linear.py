"""The exact finite-width posterior of deep linear networks (spec §4.1, §5).

For ``phi(x) = x`` the output is exactly ``f = sqrt(u) g`` with ``g ~ GP(0, K_GP)`` and
``u = prod_l Qbar_l``, the ``Qbar_l ~ Gamma(shape N_l/2, rate N_l/2)`` independent
(``Qbar_L = lambda_L |v|^2 / N_L``).  The posterior is therefore a one-dimensional mixture::

    p(u | data)  ~  p_prior(u) N(y; 0, u K_GP + T I)

and every observable is a GP formula with kernel ``u K_GP`` averaged over it.  The density of
``s = ln u`` is the convolution of the log-Gamma densities of the layers, computed by FFT on a
uniform grid in ``s`` fine enough for the widest layer; the posterior over ``s`` is then
interpolated onto a coarse grid spanning its support, where the GP moments are averaged.
This is the reference the saddle-point solver is tested against (the gap closes like 1/N).

References: Li & Sompolinsky, PRX 11, 031059 (2021); Hanin & Zlokapa, PNAS 120 (2023);
Zavatone-Veth & Pehlevan, NeurIPS 2021 (exact priors of deep linear networks).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy.optimize import brentq
from scipy.signal import fftconvolve
from scipy.special import gammaln

from widenets.theory.proportional.action import Spectrum
from widenets.theory.proportional.predictor import (
    ErrorBreakdown,
    moments,
    train_error_terms,
)

_LOG_RANGE = 60.0  # keep prior mass down to exp(-60) of the peak (exact densities)
_POST_RANGE = 30.0  # posterior support: above the FFT round-off floor (~1e-16 of the peak)
_COARSE = 801      # points on which the GP moments are averaged


def log_gamma_density(s: np.ndarray, width: int) -> np.ndarray:
    """Log density of ``ln Q`` for ``Q ~ Gamma(shape N/2, rate N/2)``."""
    a = width / 2
    return a * math.log(a) + a * s - a * np.exp(s) - gammaln(a)


def _support(width: int) -> tuple[float, float]:
    # a (e^s - s - 1) <= _LOG_RANGE on both sides of the mode s = 0
    a = width / 2
    level = _LOG_RANGE / a
    lo = brentq(lambda s: math.exp(s) - s - 1 - level, -level - 2.0, 0.0)
    hi = brentq(lambda s: math.exp(s) - s - 1 - level, 0.0, math.log(level + 2.0) + 2.0)
    return lo, hi


@dataclasses.dataclass(frozen=True)
class LinearMixture:
    """The exact posterior over ``s = ln u`` on a grid, with each layer's ``E[Qbar_l | u]``."""

    log_u: np.ndarray        # (m,) coarse grid
    weights: np.ndarray      # (m,) quadrature weights of the posterior (sum to 1)
    layer_means: np.ndarray  # (L, m): E[Qbar_l | u] under the prior

    def expect(self, values: np.ndarray) -> np.ndarray:
        """Posterior average over the first axis of ``values``."""
        return np.tensordot(self.weights, values, axes=(0, 0))


def exact_mixture(spec: Spectrum, widths, temperature: float) -> LinearMixture:
    """The exact posterior of a deep linear network over ``u`` (any widths, T >= 0)."""
    widths = [int(w) for w in widths]
    supports = [_support(w) for w in widths]
    step = min(min(math.sqrt(2 / w) for w in widths) / 40, 2e-3)
    grids = [np.arange(lo, hi + step, step) for lo, hi in supports]
    densities = [np.exp(log_gamma_density(g, w)) for g, w in zip(grids, widths, strict=True)]
    total, total_lo = _convolve_all(densities, [g[0] for g in grids], step)
    s = total_lo + step * np.arange(len(total))
    means = []
    for layer in range(len(widths)):
        tilted = list(densities)
        tilted[layer] = densities[layer] * np.exp(grids[layer])
        num, _ = _convolve_all(tilted, [g[0] for g in grids], step)
        means.append(num / np.where(total > 0, total, 1.0))
    with np.errstate(divide="ignore"):
        log_post = np.log(total) + _log_likelihood(s, spec, temperature)
    keep = log_post > log_post.max() - _POST_RANGE
    lo, hi = s[keep][0], s[keep][-1]
    coarse = np.linspace(lo, hi, _COARSE)
    log_w = np.interp(coarse, s[keep], log_post[keep])
    w = np.exp(log_w - log_w.max())
    w *= _trapezoid_weights(coarse)
    w /= w.sum()
    layer_means = np.stack([np.exp(np.interp(coarse, s[keep], np.log(np.clip(m[keep], 1e-300,
                                                                             None))))
                            for m in means])
    return LinearMixture(coarse, w, layer_means)


def _convolve_all(densities, starts, step):
    out, lo = densities[0], starts[0]
    for d, start in zip(densities[1:], starts[1:], strict=True):
        out = np.clip(fftconvolve(out, d) * step, 0.0, None)
        lo += start
    return out, lo


def _trapezoid_weights(x: np.ndarray) -> np.ndarray:
    w = np.full(len(x), x[1] - x[0])
    w[[0, -1]] /= 2
    return w


def _log_likelihood(s: np.ndarray, spec: Spectrum, temperature: float,
                    chunk: int = 4096) -> np.ndarray:
    """``ln N(y; 0, e^s K + T I)`` up to a constant (null space dropped at T = 0)."""
    if temperature > 0:
        k, z2 = spec.values, spec.z2
    else:
        k, z2 = spec.values[spec.positive], spec.z2[spec.positive]
    out = np.empty(len(s))
    for start in range(0, len(s), chunk):
        d = temperature + np.multiply.outer(np.exp(s[start:start + chunk]), k)
        out[start:start + chunk] = -0.5 * (np.log(d) + z2 / d).sum(1)
    return out


@dataclasses.dataclass(frozen=True)
class ExactLinearPredictor:
    """GP moments averaged over the exact posterior of ``u`` (one output)."""

    spec: Spectrum
    mixture: LinearMixture
    temperature: float

    def predict(self, k0: np.ndarray, k00: np.ndarray):
        u = np.exp(self.mixture.log_u)
        mean_u, var_u = moments(self.spec, u, self.temperature, k0, k00)
        mean = self.mixture.expect(mean_u)
        second = self.mixture.expect(var_u + mean_u**2)
        return mean[:, None], np.clip(second - mean**2, 0.0, None)[:, None]

    def test_error(self, k0, k00, y) -> ErrorBreakdown:
        mean, var = self.predict(k0, k00)
        y = y.reshape(len(y), -1)
        return ErrorBreakdown(float(((y - mean) ** 2).mean()), float(var.mean()))

    def train_error(self) -> ErrorBreakdown:
        u = np.exp(self.mixture.log_u)
        bias2, variance = train_error_terms(self.spec, u, self.temperature)
        # the mixture's bias^2 is that of the averaged mean; move the spread of the
        # per-u means into the variance so that total = E_u[bias2_u + variance_u]
        inv_res = self._mean_residual(u)
        bias_avg = float((self.mixture.expect(inv_res) ** 2).sum() / len(self.spec.values))
        total = float(self.mixture.expect(bias2 + variance))
        return ErrorBreakdown(bias_avg, total - bias_avg)

    def _mean_residual(self, u: np.ndarray) -> np.ndarray:
        """``y - <f(X)>_u = T (T + uK)^{-1} y`` in the eigenbasis, shape (m, P)."""
        z = self.spec.z[:, 0]
        if self.temperature == 0:
            return np.broadcast_to(np.where(self.spec.positive, 0.0, z), (len(u), len(z)))
        return self.temperature * z / (self.temperature + np.multiply.outer(u, self.spec.values))
