"""The Bayesian posterior of a Gaussian process with a network's kernel, and its evidence.

With ``K`` the NNGP (or, with ``get="ntk"``, the NTK used as a GP covariance), observation
noise variance ``s2`` and ``A = Kdd + s2 I`` (Rasmussen and Williams 2006, eqs. 2.25-2.26,
2.30; Lee et al. 2018, sec. 2.2)::

    mean = Ktd A^-1 y,      cov = Ktt - Ktd A^-1 Ktd^T      (the latent function, no noise)
    log p(y) = sum_k [ -1/2 y_k^T A^-1 y_k ] - n_outputs (1/2 log det A + n/2 log 2 pi)

summed over independent output columns ``y_k``.  Everything goes through one Cholesky
factor of ``A`` (jittered only with a warning).
"""

from __future__ import annotations

import dataclasses
import math

import torch

from widenets.predict import _linalg
from widenets.predict._inputs import as_matrix, as_targets, check_get, check_number, kernel_part
from widenets.validation import as_inputs

Tensor = torch.Tensor


@dataclasses.dataclass(frozen=True)
class Posterior:
    """A GP posterior on test inputs.

    Attributes
    ----------
    mean : Tensor, shape ``(n_test, n_outputs)``
    cov : Tensor or None, shape ``(n_test, n_test)``
        Covariance of the latent function (add ``noise * I`` for noisy observations).
    log_marginal_likelihood : Tensor, scalar
        ``log p(y_train)`` summed over outputs.
    noise : float
        Observation noise variance.
    get : {"nngp", "ntk"}
    """

    mean: Tensor
    cov: Tensor | None
    log_marginal_likelihood: Tensor
    noise: float
    get: str

    @property
    def variance(self) -> Tensor | None:
        """Marginal variances ``(n_test,)`` of the latent function (rounding clipped at 0)."""
        return None if self.cov is None else self.cov.diagonal().clamp_min(0)


def gp_posterior(net, x_train, y_train, x_test=None, *, noise: float = 0.0, get: str = "nngp",
                 compute_cov: bool = True, batch_size: int | None = None) -> Posterior:
    """Exact GP posterior of an infinitely wide Bayesian network (the NNGP posterior).

    Parameters
    ----------
    net : widenets.Layer
    x_train : Tensor, shape ``(n_train, ...)``
    y_train : Tensor, shape ``(n_train,)`` or ``(n_train, n_outputs)``
    x_test : Tensor, shape ``(n_test, ...)``, optional
        None: the posterior at the training inputs.
    noise : float
        Observation noise variance (``>= 0``); 0 is noiseless interpolation.
    get : {"nngp", "ntk"}
        The GP covariance: the NNGP (a Bayesian network) or the NTK.
    compute_cov : bool
    batch_size : int, optional
        Passed to :meth:`Layer.kernel`.

    Returns
    -------
    Posterior

    Raises
    ------
    NotPositiveDefiniteError
        ``Kdd + noise I`` is singular even after jitter.

    References
    ----------
    Lee et al. 2018, "Deep neural networks as Gaussian processes", sec. 2.2; Rasmussen and
    Williams 2006, algorithm 2.1.

    Examples
    --------
    >>> import torch, widenets as wn
    >>> net = wn.serial(wn.Dense(512, 1.5, 0.1), wn.Erf(), wn.Dense(1, 1.0, 0.1))
    >>> post = wn.predict.gp_posterior(net, torch.randn(10, 3), torch.randn(10),
    ...                                torch.randn(4, 3), noise=1e-2)
    >>> post.mean.shape, post.cov.shape
    (torch.Size([4, 1]), torch.Size([4, 4]))
    """
    check_get(get)
    noise = check_number("noise", noise)
    x_train = as_inputs("x_train", x_train, torch.float64)
    x_test = None if x_test is None else as_inputs("x_test", x_test, torch.float64,
                                                   like=x_train)
    y = as_targets(y_train, len(x_train), x_train)
    k_dd = getattr(net.kernel(x_train, get=get, batch_size=batch_size), get)
    k_td = k_tt = None
    if x_test is not None:
        k_td = getattr(net.kernel(x_test, x_train, get=get, batch_size=batch_size), get)
        if compute_cov:
            k_tt = getattr(net.kernel(x_test, get=get, batch_size=batch_size), get)
    return gp_posterior_from_kernels(k_dd, y, k_td, k_tt, noise=noise, get=get,
                                     compute_cov=compute_cov)


def gp_posterior_from_kernels(k_train_train, y_train, k_test_train=None, k_test_test=None, *,
                              noise: float = 0.0, get: str = "nngp",
                              compute_cov: bool = True) -> Posterior:
    """:func:`gp_posterior` from precomputed kernels (matrices, or Kernels read at ``get``).

    ``k_test_train`` None means the training inputs (then ``k_test_test`` is not needed).
    """
    get = check_get(get)
    noise = check_number("noise", noise)
    k_dd = kernel_part(k_train_train, get, "k_train_train", get)
    k_dd = as_matrix("k_train_train", k_dd, (len(k_dd),) * 2)
    n = len(k_dd)
    y = as_targets(y_train, n, k_dd)
    if k_test_train is None:
        k_td, k_tt = k_dd, k_dd
    else:
        part = kernel_part(k_test_train, get, "k_test_train", get)
        k_td = as_matrix("k_test_train", part, (len(part), n), k_dd)
        k_tt = None
        if compute_cov:
            if k_test_test is None:
                from widenets.errors import InputValueError

                raise InputValueError("`k_test_test` is needed for the covariance; pass it "
                                      "or compute_cov=False.")
            k_tt = as_matrix("k_test_test", kernel_part(k_test_test, get, "k_test_test", get),
                             (len(k_td),) * 2, k_dd)
    factor = _linalg.cholesky(_linalg.add_diagonal(k_dd, noise), _name(get, noise))
    alpha = _linalg.cholesky_solve(factor, y)
    mean = k_td @ alpha
    cov = None
    if compute_cov:
        w = torch.linalg.solve_triangular(factor, k_td.T, upper=False)
        cov = k_tt - w.T @ w
        cov = (cov + cov.T) / 2
    return Posterior(mean=mean, cov=cov, log_marginal_likelihood=_lml(factor, y, alpha),
                     noise=noise, get=get)


def _name(get: str, noise: float) -> str:
    return f"train-train {get.upper()}" + (" plus noise" if noise else "")


def _lml(factor: Tensor, y: Tensor, alpha: Tensor) -> Tensor:
    n, k = y.shape
    fit = -0.5 * (y * alpha).sum()
    log_det = 2 * torch.log(factor.diagonal()).sum()
    return fit - 0.5 * k * log_det - 0.5 * k * n * math.log(2 * math.pi)


def log_marginal_likelihood_from_kernel(k_train_train, y_train, *, noise: float = 0.0,
                                        get: str = "nngp") -> Tensor:
    """``log p(y_train)`` under a zero-mean GP with covariance ``K + noise I``.

    ``k_train_train`` is a matrix or a Kernel (read at ``get``).  Differentiable with
    respect to a kernel matrix that requires grad (for gradient-based model selection).
    """
    get = check_get(get)
    noise = check_number("noise", noise)
    k = kernel_part(k_train_train, get, "k_train_train", get)
    k = as_matrix("k_train_train", k, (len(k),) * 2)
    y = as_targets(y_train, len(k), k)
    factor = _linalg.cholesky(_linalg.add_diagonal(k, noise), _name(get, noise))
    return _lml(factor, y, _linalg.cholesky_solve(factor, y))


def log_marginal_likelihood(net, x_train, y_train, *, noise: float = 0.0, get: str = "nngp",
                            batch_size: int | None = None) -> Tensor:
    """Log marginal likelihood (evidence) of the NNGP, for choosing ``weight_std``,
    ``bias_std``, depth and noise (Lee et al. 2018; Rasmussen and Williams 2006, eq. 2.30).

    Returns
    -------
    Tensor
        A float64 scalar, summed over output columns.
    """
    check_get(get)
    x_train = as_inputs("x_train", x_train, torch.float64)
    y = as_targets(y_train, len(x_train), x_train)
    k = getattr(net.kernel(x_train, get=get, batch_size=batch_size), get)
    return log_marginal_likelihood_from_kernel(k, y, noise=noise, get=get)
