"""The Gaussian-process predictor with a renormalised kernel (spec §3.4-3.5).

At the saddle point the posterior over outputs is a GP with kernel ``Qbar K_GP`` and noise
``T``; in the eigenbasis of ``K_GP`` (values ``k``, vectors ``U``, ``z = U^T y``)::

    <f(x0)>   = q sum_i (U^T k0)_i z_i / (T + q k_i)
    Var f(x0) = q k00 - q^2 sum_i (U^T k0)_i^2 / (T + q k_i)
    eps_train = (1/P) sum_i [ T^2 z_i^2 / (T + q k_i)^2 + T q k_i / (T + q k_i) ]

At ``T = 0`` the null-space directions of K drop out of the mean and the variance (the
pseudo-inverse rule of spec §3.3).  Every function is vectorised over the renormalisation
``q`` so the exact deep-linear mixture (:mod:`.linear`) can average them over ``u``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from widenets.theory.proportional.action import Spectrum


@dataclasses.dataclass(frozen=True)
class ErrorBreakdown:
    """A posterior-averaged squared error ``total = bias_squared + variance``.

    ``bias_squared`` is the error of the posterior-mean predictor; ``variance`` the posterior
    variance of the output, both averaged over the points and outputs.
    ``float(err)`` is ``total``.
    """

    bias_squared: float
    variance: float

    @property
    def total(self) -> float:
        return self.bias_squared + self.variance

    def __float__(self) -> float:
        return self.total


def inverse_denominators(spec: Spectrum, q, temperature: float) -> np.ndarray:
    """``1 / (T + q k_i)``, shape ``q.shape + (P,)``, zero on the null space at T = 0."""
    q = np.asarray(q, dtype=np.float64)
    d = temperature + np.multiply.outer(q, spec.values)
    if temperature > 0:
        return 1 / d
    return np.where(spec.positive, 1 / np.where(spec.positive, d, 1.0), 0.0)


def moments(spec: Spectrum, q, temperature: float, k0: np.ndarray, k00: np.ndarray,
            z: np.ndarray | None = None):
    """Posterior mean and variance at test points for each renormalisation in ``q``.

    Parameters
    ----------
    spec : Spectrum
        Of the un-renormalised train kernel.
    q : float or array of shape (m,)
    k0 : array (n, P)
        Un-renormalised test-train kernel.
    k00 : array (n,)
        Un-renormalised test variances.
    z : array (P,), optional
        Labels in the eigenbasis (default: the first output of ``spec.z``).

    Returns
    -------
    mean, var : arrays of shape ``q.shape + (n,)``
    """
    q = np.asarray(q, dtype=np.float64)
    z = spec.z[:, 0] if z is None else z
    inv = inverse_denominators(spec, q, temperature)  # q.shape + (P,)
    k0u = k0 @ spec.vectors                            # (n, P)
    mean = q[..., None] * ((inv * z) @ k0u.T)
    var = q[..., None] * k00 - (q**2)[..., None] * (inv @ (k0u**2).T)
    return mean, np.clip(var, 0.0, None)


def train_error_terms(spec: Spectrum, q, temperature: float, z2: np.ndarray | None = None):
    """``(bias^2, variance)`` of the training error for each ``q`` (spec §3.5)."""
    q = np.asarray(q, dtype=np.float64)
    z2 = spec.z2 if z2 is None else z2
    n = len(spec.values)
    if temperature == 0:
        null = ~spec.positive
        return np.full(q.shape, z2[null].sum() / n), np.zeros(q.shape)
    d = temperature + np.multiply.outer(q, spec.values)
    bias2 = (temperature**2 * z2 / d**2).sum(-1) / n
    variance = (temperature * np.multiply.outer(q, spec.values) / d).sum(-1) / n
    return bias2, variance


@dataclasses.dataclass(frozen=True)
class RenormalisedGP:
    """A GP posterior whose train kernel is ``K`` (spectrum ``spec``) renormalised per output.

    Output ``a`` of the rotated labels ``Y V`` has kernel ``scales[a] K``; ``rotation`` is
    ``V`` (``D x D`` orthogonal; the identity for one output).  This covers the scalar
    theory (``scales = [Qbar]``), multi-output (``Qbar = V diag(scales) V^T``, spec §3.7) and
    any kernel re-decomposed after a shape change (spec §3.6, with ``scales = 1``).
    """

    spec: Spectrum
    scales: np.ndarray
    rotation: np.ndarray
    temperature: float

    def predict(self, k0: np.ndarray, k00: np.ndarray):
        """Means ``(n, D)`` and marginal variances ``(n, D)`` at test points."""
        z = self.spec.z @ self.rotation
        means, variances = [], []
        for a, q in enumerate(self.scales):
            m, v = moments(self.spec, q, self.temperature, k0, k00, z[:, a])
            means.append(m)
            variances.append(v)
        mean = np.stack(means, 1) @ self.rotation.T
        var = np.stack(variances, 1) @ (self.rotation.T**2)
        return mean, var

    def train_error(self) -> ErrorBreakdown:
        z2 = (self.spec.z @ self.rotation) ** 2
        bias2 = variance = 0.0
        for a, q in enumerate(self.scales):
            b, v = train_error_terms(self.spec, q, self.temperature, z2[:, a])
            bias2, variance = bias2 + float(b), variance + float(v)
        return ErrorBreakdown(bias2 / len(self.scales), variance / len(self.scales))
