"""Mean and covariance of infinitely wide networks trained by gradient flow on MSE.

kernels.md, "Exact predictions" (Lee et al. 2019, eqs. 14-16; neural-tangents'
``predict.gradient_descent_mse_ensemble``).  With ``G`` the NNGP or NTK, ``N`` the NNGP,
``d`` the training and ``t`` the test inputs, ``M = n_train * n_outputs`` targets, learning
rate ``eta`` and ``tau = eta * t / M``::

    mean(t) = Gtd Gdd^-1 (I - exp(-tau Gdd)) y
    cov(t)  = Ntt - Gtd Gdd^-1 (I - exp(-2 tau Gdd)) Gtd^T                 (get="nngp")
    cov(t)  = Ntt + P^T Ndd P - (Ntd P + (Ntd P)^T),
              P = Gdd^-1 (I - exp(-tau Gdd)) Gtd^T                          (get="ntk")

``diag_reg`` replaces ``Gdd`` by ``Gdd + r I`` with ``r = diag_reg * trace(Gdd) / n_train``
(or ``r = diag_reg`` with ``diag_reg_absolute=True``), in ``Gdd`` only.  Finite times use the
eigendecomposition ``Gdd = V diag(l) V^T`` and ``Gdd^-1 (I - exp(-s Gdd)) = V diag(-expm1(-l s)
/ l) V^T`` (which is ``s`` at ``l = 0``, where neural-tangents returns NaN); ``t = inf`` uses
a Cholesky solve.  When ``x_test`` is None the predictions are the training outputs of the
regularised dynamics (as in neural-tangents): ``mean = (I - exp(-tau Gdd)) y``, covariance
``V diag(l exp(-2 l tau)) V^T`` (NNGP) or ``E Ndd E`` with ``E = exp(-tau Gdd)`` (NTK); with
``diag_reg > 0`` these differ from passing ``x_test=x_train``.
"""

from __future__ import annotations

import dataclasses
import math

import torch

from widenets.predict import _linalg
from widenets.predict._inputs import (
    as_matrix,
    as_targets,
    as_times,
    check_get,
    check_number,
    kernel_part,
)
from widenets.validation import as_inputs

Tensor = torch.Tensor


@dataclasses.dataclass(frozen=True)
class Prediction:
    """Gaussian predictions at several times.

    Attributes
    ----------
    mean : Tensor, shape ``(n_times, n_test, n_outputs)``
    cov : Tensor or None, shape ``(n_times, n_test, n_test)``
        Covariance over test points, the same for every output (outputs are independent).
    t : Tensor, shape ``(n_times,)``, float64
    get : {"nngp", "ntk"}
    """

    mean: Tensor
    cov: Tensor | None
    t: Tensor
    get: str

    @property
    def variance(self) -> Tensor | None:
        """Marginal variances ``(n_times, n_test)`` (negative rounding clipped to 0)."""
        return None if self.cov is None else self.cov.diagonal(dim1=-2, dim2=-1).clamp_min(0)


def gradient_flow(net, x_train, y_train, x_test=None, *, t=math.inf, get: str = "ntk",
                  learning_rate: float = 1.0, diag_reg: float = 0.0,
                  diag_reg_absolute: bool = False, compute_cov: bool = True,
                  batch_size: int | None = None) -> Prediction:
    """Predictions of an infinite ensemble of infinitely wide networks after training time t.

    Computes the kernels of ``net`` (float64) and calls :func:`gradient_flow_from_kernels`;
    the formulas are in :mod:`widenets.predict.gradient_flow`.

    Parameters
    ----------
    net : widenets.Layer
        The architecture.
    x_train : Tensor, shape ``(n_train, ...)``
    y_train : Tensor, shape ``(n_train,)`` or ``(n_train, n_outputs)``
    x_test : Tensor, shape ``(n_test, ...)``, optional
        None: predictions on the training inputs.
    t : float or sequence of float
        Training times (``>= 0``; ``inf`` for the end of training).
    get : {"ntk", "nngp"}
        Gradient descent on all layers (NTK) or on the readout only (NNGP).
    learning_rate : float
        ``eta > 0``; time enters only as ``eta * t``.
    diag_reg : float
        Diagonal regularisation of the train-train kernel (``>= 0``).
    diag_reg_absolute : bool
        ``diag_reg`` in absolute units instead of relative to ``trace(Gdd) / n_train``.
    compute_cov : bool
        Also compute the covariance (needs the NNGP test-test kernel).
    batch_size : int, optional
        Passed to :meth:`Layer.kernel` to bound memory.

    Returns
    -------
    Prediction
        ``mean (n_times, n_test, n_outputs)``, ``cov (n_times, n_test, n_test)``.

    Raises
    ------
    ShapeError, InputValueError, HyperparameterError
        Bad inputs (shapes, NaN, ``len(y_train)``, ``t < 0``, ``learning_rate <= 0``).
    NotPositiveDefiniteError
        The train-train kernel is singular and ``t = inf`` (pass ``diag_reg``).

    References
    ----------
    Lee et al. 2019, "Wide neural networks of any depth evolve as linear models under
    gradient descent", eqs. 14-16.

    Examples
    --------
    >>> import torch, widenets as wn
    >>> net = wn.serial(wn.Dense(512, 1.5, 0.1), wn.Relu(), wn.Dense(1, 1.0, 0.1))
    >>> x, y = torch.randn(20, 3), torch.randn(20, 2)
    >>> pred = wn.predict.gradient_flow(net, x, y, torch.randn(5, 3), t=[1.0, float("inf")])
    >>> pred.mean.shape, pred.cov.shape
    (torch.Size([2, 5, 2]), torch.Size([2, 5, 5]))
    """
    check_get(get)
    times = as_times(t)
    learning_rate = check_number("learning_rate", learning_rate, positive=True)
    diag_reg = check_number("diag_reg", diag_reg)
    x_train = as_inputs("x_train", x_train, torch.float64)
    x_test = None if x_test is None else as_inputs("x_test", x_test, torch.float64,
                                                   like=x_train)
    y = as_targets(y_train, len(x_train), x_train)
    gets = ("nngp", "ntk") if get == "ntk" and compute_cov else (get,)
    k_dd = net.kernel(x_train, get=gets, batch_size=batch_size)
    k_td = k_tt = None
    if x_test is not None:
        k_td = net.kernel(x_test, x_train, get=gets, batch_size=batch_size)
        if compute_cov:
            k_tt = net.kernel(x_test, get="nngp", batch_size=batch_size).nngp
    return gradient_flow_from_kernels(
        k_dd, y, k_td, k_tt, t=times, get=get, learning_rate=learning_rate,
        diag_reg=diag_reg, diag_reg_absolute=diag_reg_absolute, compute_cov=compute_cov)


def gradient_flow_from_kernels(k_train_train, y_train, k_test_train=None, k_test_test=None, *,
                               t=math.inf, get: str = "ntk", learning_rate: float = 1.0,
                               diag_reg: float = 0.0, diag_reg_absolute: bool = False,
                               compute_cov: bool = True) -> Prediction:
    """:func:`gradient_flow` from precomputed kernel matrices.

    Parameters
    ----------
    k_train_train : Kernel, dict or Tensor ``(n_train, n_train)``
        A :class:`widenets.Kernel` (or dict) with ``nngp`` and/or ``ntk``; a plain matrix is
        taken as the ``get`` kernel.  ``get="ntk"`` with ``compute_cov`` needs both.
    y_train : Tensor, shape ``(n_train,)`` or ``(n_train, n_outputs)``
    k_test_train : Kernel, dict or Tensor ``(n_test, n_train)``, optional
        None: predictions on the training inputs.
    k_test_test : Tensor ``(n_test, n_test)`` or Kernel, optional
        The NNGP test-test kernel; needed for the covariance on test inputs.
    t, get, learning_rate, diag_reg, diag_reg_absolute, compute_cov
        As in :func:`gradient_flow`.

    Returns
    -------
    Prediction
    """
    get = check_get(get)
    times = as_times(t)
    eta = check_number("learning_rate", learning_rate, positive=True)
    reg = check_number("diag_reg", diag_reg)
    g_dd = kernel_part(k_train_train, get, "k_train_train", get)
    g_dd = as_matrix("k_train_train", g_dd, (len(g_dd),) * 2)
    n = len(g_dd)
    y = as_targets(y_train, n, g_dd)
    need_nngp = compute_cov and get == "ntk"
    n_dd = as_matrix("k_train_train", kernel_part(k_train_train, "nngp", "k_train_train", get),
                     (n, n), g_dd) if need_nngp else g_dd
    g_td = n_td = n_tt = None
    if k_test_train is not None:
        part = kernel_part(k_test_train, get, "k_test_train", get)
        m = len(part)
        g_td = as_matrix("k_test_train", part, (m, n), g_dd)
        n_td = as_matrix("k_test_train", kernel_part(k_test_train, "nngp", "k_test_train", get),
                         (m, n), g_dd) if need_nngp else g_td
        if compute_cov:
            if k_test_test is None:
                raise _missing_test_test()
            n_tt = as_matrix("k_test_test", kernel_part(k_test_test, "nngp", "k_test_test",
                                                        "nngp"), (m, m), g_dd)
    shift = reg if diag_reg_absolute else reg * float(g_dd.diagonal().sum()) / n
    g_reg = _linalg.add_diagonal(g_dd, shift)
    name = f"train-train {get.upper()}" + (" (with diag_reg)" if shift else "")
    tau = eta * times.to(g_dd.device) / y.numel()
    if g_td is None:
        mean, cov = _on_training_set(g_reg, n_dd, y, tau, get, compute_cov, name)
    else:
        mean, cov = _on_test_set(g_reg, g_td, n_dd, n_td, n_tt, y, tau, get, compute_cov, name)
    return Prediction(mean=mean, cov=cov, t=times, get=get)


def _missing_test_test():
    from widenets.errors import InputValueError

    return InputValueError("`k_test_test` (the NNGP of the test inputs with themselves) is "
                           "needed for the covariance; pass it or compute_cov=False.")


def _decay(evals: Tensor, tau: Tensor) -> Tensor:
    """``exp(-l tau)`` of shape ``(n_times, n)``, with ``exp(-0 * inf) = 1``."""
    prod = evals[None, :] * tau.to(evals.dtype)[:, None]
    return torch.exp(-torch.nan_to_num(prod, nan=0.0))


def _filter(evals: Tensor, s: Tensor) -> Tensor:
    """``(1 - exp(-l s)) / l`` of shape ``(n_times, n)``, equal to ``s`` at ``l = 0``."""
    s = s.to(evals.dtype)[:, None]
    safe = torch.where(evals > 0, evals, torch.ones_like(evals))[None, :]
    return torch.where(evals[None, :] > 0, -torch.expm1(-safe * s) / safe, s.expand(-1, len(evals)))


def _on_training_set(g_reg, n_dd, y, tau, get, compute_cov, name):
    evals, evecs = _linalg.eigh_psd(g_reg, name)
    decay = _decay(evals, tau)
    coef = evecs.T @ y
    mean = torch.einsum("ji,ti,ik->tjk", evecs, 1 - decay, coef)
    if not compute_cov:
        return mean, None
    if get == "nngp":
        cov = torch.einsum("ji,ti,li->tjl", evecs, evals * decay**2, evecs)
    else:
        e = torch.einsum("ji,ti,li->tjl", evecs, decay, evecs)
        cov = e @ n_dd @ e
    return mean, _symmetric(cov)


def _on_test_set(g_reg, g_td, n_dd, n_td, n_tt, y, tau, get, compute_cov, name):
    n_t, m = len(tau), len(g_td)
    mean = g_td.new_empty(n_t, m, y.shape[1])
    cov = g_td.new_empty(n_t, m, m) if compute_cov else None
    finite = torch.isfinite(tau)
    if finite.any():
        idx = finite.nonzero().flatten()
        evals, evecs = _linalg.eigh_psd(g_reg, name)
        a = g_td @ evecs
        f = _filter(evals, tau[idx])
        mean[idx] = torch.einsum("ji,ti,ik->tjk", a, f, evecs.T @ y)
        if compute_cov:
            if get == "nngp":
                cov[idx] = n_tt - torch.einsum("ji,ti,li->tjl", a, _filter(evals, 2 * tau[idx]), a)
            else:
                p = torch.einsum("ji,ti,li->tjl", evecs, f, a)  # (t, n_train, n_test)
                cov[idx] = _ntk_cov(p, n_dd, n_td, n_tt)
    if not finite.all():
        idx = (~finite).nonzero().flatten()
        factor = _linalg.cholesky(g_reg, name)
        mean[idx] = g_td @ _linalg.cholesky_solve(factor, y)
        if compute_cov:
            if get == "nngp":
                w = torch.linalg.solve_triangular(factor, g_td.T, upper=False)
                cov[idx] = n_tt - w.T @ w
            else:
                cov[idx] = _ntk_cov(_linalg.cholesky_solve(factor, g_td.T)[None], n_dd, n_td,
                                    n_tt)
    return mean, None if cov is None else _symmetric(cov)


def _ntk_cov(p, n_dd, n_td, n_tt):
    cross = n_td @ p
    return n_tt + p.transpose(-1, -2) @ n_dd @ p - (cross + cross.transpose(-1, -2))


def _symmetric(cov: Tensor) -> Tensor:
    return (cov + cov.transpose(-1, -2)) / 2
