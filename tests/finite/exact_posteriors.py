"""Exact posteriors that Langevin sampling is checked against (independent of widenets).

Deep linear network (proportional.md §4.1, §5; Li & Sompolinsky 2021): with no biases,
effective-weight precisions ``lambda_l`` and widths ``N_1..N_L``, the output is ``f = sqrt(u) g``
with ``g ~ GP(0, K)``, ``K = X X^T / (N0 lambda_0 ... lambda_L)``, ``u = prod_l Q_l`` and
``Q_l ~ Gamma(N_l / 2, rate N_l / 2)`` independent; the readout's ``lambda_L |v|^2 / N_L`` is
``Q_L``.  The posterior given data at temperature T is the mixture
``p(Q | D) ∝ prod_l Gamma(Q_l) N(y; 0, u K + T I)`` of GP posteriors, computed here by
quadrature over ``log Q_l`` (trapezoid rule on a grid wide enough that the integrand is
below 1e-30 at its ends).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import gammaln


def _gp_pieces(x, y, x0, precisions, temperature):
    n0 = x.shape[1]
    scale = 1.0 / (n0 * math.prod(precisions))
    k = scale * x @ x.T
    k0 = scale * x @ x0.T  # (P, P0)
    k00 = scale * np.einsum("ij,ij->i", x0, x0)
    evals, evecs = np.linalg.eigh(k)
    return evals, evecs.T @ y, evecs.T @ k0, k00


def _moments(u, pieces, temperature):
    """Log-likelihood of y, and the GP-posterior mean and variance at x0, for each u."""
    evals, zy, zk0, k00 = pieces
    denom = u[:, None] * evals[None] + temperature  # (U, P)
    loglik = -0.5 * (np.log(denom) + zy[None] ** 2 / denom).sum(1) \
        - 0.5 * len(evals) * math.log(2 * math.pi)
    mean = u[:, None] * ((zk0 * zy[:, None])[None] / denom[:, :, None]).sum(1)
    var = u[:, None] * k00[None] - u[:, None] ** 2 * (zk0[None] ** 2 / denom[:, :, None]).sum(1)
    return loglik, mean, var


def deep_linear_posterior(x, y, x0, widths, temperature, precisions=None, n_grid=1200):
    """Exact posterior moments of a deep linear network's output at ``x0``.

    Parameters
    ----------
    x : (P, N0) training inputs; y : (P,) targets; x0 : (P0, N0) test inputs.
    widths : hidden widths ``N_1..N_L``.
    precisions : ``lambda_0..lambda_L`` (default all 1).

    Returns
    -------
    dict with ``mean`` (P0,), ``second_moment`` (P0,) of ``f(x0)``, ``readout_order``
    (``E[Q_L | D]``) and ``u`` (``E[prod Q_l | D]``).
    """
    precisions = [1.0] * (len(widths) + 1) if precisions is None else list(precisions)
    pieces = _gp_pieces(np.asarray(x, float), np.asarray(y, float), np.asarray(x0, float),
                        precisions, temperature)
    t = np.linspace(-30.0, 4.0, n_grid)
    dt = t[1] - t[0]
    log_prior = []
    for n in widths:
        a = n / 2.0
        log_prior.append(a * math.log(a) + a * t - a * np.exp(t) - gammaln(a))
    weights = np.full(n_grid, dt)
    weights[[0, -1]] *= 0.5
    total = {"norm": 0.0, "mean": 0.0, "second_moment": 0.0, "readout_order": 0.0, "u": 0.0}
    # every u = exp(sum of grid points) lies on a finer uniform grid: evaluate there once
    n_layers = len(widths)
    sums = np.arange(n_layers * (n_grid - 1) + 1)
    s_values = n_layers * t[0] + sums * dt
    loglik, mean, var = _moments(np.exp(s_values), pieces, temperature)
    grids = np.meshgrid(*[np.arange(n_grid)] * n_layers, indexing="ij")
    index = sum(grids)
    log_w = sum(lp[g] for lp, g in zip(log_prior, grids, strict=True)) + loglik[index]
    log_w = log_w + sum(np.log(weights[g]) for g in grids)
    w = np.exp(log_w - log_w.max())
    norm = w.sum()
    total["mean"] = np.tensordot(w, mean[index], axes=n_layers) / norm
    total["second_moment"] = np.tensordot(w, (var + mean**2)[index], axes=n_layers) / norm
    total["readout_order"] = (w * np.exp(t)[grids[-1]]).sum() / norm
    total["u"] = (w * np.exp(s_values)[index]).sum() / norm
    total.pop("norm")
    return total


def deep_linear_importance(x, y, x0, widths, temperature, n=400_000, seed=0):
    """The same moments by importance sampling from the prior (an independent check of the
    quadrature, unit precisions); returns (moments, their delta-method standard errors)."""
    rng = np.random.default_rng(seed)
    q = np.stack([rng.gamma(w / 2.0, 2.0 / w, size=n) for w in widths])
    u = q.prod(0)
    pieces = _gp_pieces(np.asarray(x, float), np.asarray(y, float), np.asarray(x0, float),
                        [1.0] * (len(widths) + 1), temperature)
    loglik, mean, var = _moments(u, pieces, temperature)
    w = np.exp(loglik - loglik.max())
    w /= w.sum()
    values = {"mean": mean, "second_moment": var + mean**2, "readout_order": q[-1]}
    out = {k: w @ v for k, v in values.items()}
    # self-normalised estimator: SE^2 = sum_i w_i^2 (g_i - estimate)^2
    se = {k: np.sqrt(w**2 @ (v - out[k]) ** 2) for k, v in values.items()}
    return out, se


def readout_posterior(embedding, y, temperature):
    """Exact Gaussian posterior of whitened readout weights ``omega`` (prior N(0, I)) for
    ``f = embedding @ omega``: returns (mean (D, k), covariance (D, D)) per output column."""
    e = np.asarray(embedding, float)
    precision = np.eye(e.shape[1]) + e.T @ e / temperature
    cov = np.linalg.inv(precision)
    return cov @ e.T @ np.asarray(y, float) / temperature, cov


def ula_stationary_covariance(precision, step_size):
    """Stationary covariance of the unadjusted Langevin algorithm on N(mu, precision^-1):
    ``z' = z - eps A (z - mu) + sqrt(2 eps) xi`` has ``S = (A (I - eps A / 2))^-1`` (solve
    ``S = (I - eps A) S (I - eps A) + 2 eps I`` in A's eigenbasis) and the exact mean."""
    evals, evecs = np.linalg.eigh(precision)
    return (evecs / (evals * (1 - step_size * evals / 2))) @ evecs.T


def gp_posterior(x, y, x0, temperature, n_layers, precisions=None):
    """The infinite-width limit (``u = Q_L = 1``) of :func:`deep_linear_posterior`."""
    precisions = [1.0] * (n_layers + 1) if precisions is None else list(precisions)
    pieces = _gp_pieces(np.asarray(x, float), np.asarray(y, float), np.asarray(x0, float),
                        precisions, temperature)
    _, mean, var = _moments(np.ones(1), pieces, temperature)
    return {"mean": mean[0], "second_moment": (var + mean**2)[0], "readout_order": 1.0}
