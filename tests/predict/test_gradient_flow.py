"""gradient_flow against independent formulas, limits and the ODE it solves.

The reference here never diagonalises: ``Gdd^-1 (I - exp(-s Gdd))`` is read off the
matrix exponential of the block matrix ``[[-s G, I], [0, 0]]`` (scipy's ``expm``), whose
top-right block is ``phi1(-s G) = (-s G)^-1 (exp(-s G) - I)`` for any G, singular or not.
"""

import math
import warnings

import numpy as np
import pytest
import scipy.linalg
import torch

import widenets as wn
from widenets.errors import (
    HyperparameterError,
    InputValueError,
    NotPositiveDefiniteError,
    ShapeError,
    WidenetsWarning,
)
from widenets.predict import gp_posterior, gradient_flow, gradient_flow_from_kernels

NET = wn.serial(wn.Dense(256, 1.3, 0.2), wn.Erf(), wn.Dense(256, 1.2, 0.1), wn.Relu(),
                wn.Dense(1, 1.0, 0.1))
GEN = torch.Generator().manual_seed(5)
X_TRAIN = torch.randn(12, 3, generator=GEN, dtype=torch.float64)
X_TEST = torch.randn(5, 3, generator=GEN, dtype=torch.float64)
Y = torch.randn(12, 2, generator=GEN, dtype=torch.float64)
K_DD, K_TD = NET.kernel(X_TRAIN), NET.kernel(X_TEST, X_TRAIN)
K_TT = NET.kernel(X_TEST).nngp
# Rounding (1e-16) times the condition number of these kernels (< 1e4) and of expm.
RTOL = 1e-10


def filt(g, s):
    """Gdd^-1 (I - exp(-s Gdd)) without inverting or diagonalising Gdd."""
    n = len(g)
    block = np.zeros((2 * n, 2 * n))
    block[:n, :n] = -s * g
    block[:n, n:] = np.eye(n)
    return s * scipy.linalg.expm(block)[:n, n:]


def reference(get, t, lr, reg, absolute):
    g_dd, g_td = (getattr(K_DD, get).numpy(), getattr(K_TD, get).numpy())
    n_dd, n_td, n_tt = K_DD.nngp.numpy(), K_TD.nngp.numpy(), K_TT.numpy()
    n = len(g_dd)
    g = g_dd + (reg if absolute else reg * np.trace(g_dd) / n) * np.eye(n)
    s = lr * t / Y.numel()
    f = np.linalg.inv(g) if math.isinf(t) else filt(g, s)
    mean = g_td @ f @ Y.numpy()
    if get == "nngp":
        f2 = np.linalg.inv(g) if math.isinf(t) else filt(g, 2 * s)
        cov = n_tt - g_td @ f2 @ g_td.T
    else:
        p = f @ g_td.T
        cov = n_tt + p.T @ n_dd @ p - (n_td @ p + (n_td @ p).T)
    return mean, cov


def rel(a, b):
    """Max-norm relative error (absolute where the reference is exactly zero, at t = 0)."""
    b = torch.as_tensor(b)
    scale = float(b.abs().max())
    return float((a - b).abs().max()) / (scale if scale > 0 else 1.0)


@pytest.mark.parametrize("get", ["nngp", "ntk"])
@pytest.mark.parametrize("reg,absolute", [(0.0, False), (0.03, False), (0.2, True)])
def test_matches_matrix_exponential_formulas(get, reg, absolute):
    times = [0.0, 0.3, 7.0, 90.0, math.inf]
    pred = gradient_flow(NET, X_TRAIN, Y, X_TEST, t=times, get=get, learning_rate=1.7,
                         diag_reg=reg, diag_reg_absolute=absolute)
    for i, t in enumerate(times):
        mean, cov = reference(get, t, 1.7, reg, absolute)
        assert rel(pred.mean[i], mean) < RTOL
        assert rel(pred.cov[i], cov) < RTOL
    assert pred.mean.shape == (5, 5, 2) and pred.cov.shape == (5, 5, 5)


@pytest.mark.parametrize("get", ["nngp", "ntk"])
def test_training_set_formulas(get):
    times = [0.0, 2.0, 50.0]
    pred = gradient_flow(NET, X_TRAIN, Y, t=times, get=get, learning_rate=0.5)
    g, n_dd = getattr(K_DD, get).numpy(), K_DD.nngp.numpy()
    for i, t in enumerate(times):
        e = scipy.linalg.expm(-0.5 * t / Y.numel() * g)
        assert rel(pred.mean[i], (np.eye(12) - e) @ Y.numpy()) < RTOL
        assert rel(pred.cov[i], e @ n_dd @ e) < RTOL  # for NNGP, e G e = V l e^-2lt V^T


def test_time_and_learning_rate_and_outputs_conventions():
    # time enters only as eta t / (n_train n_outputs): (eta, t) = (2, 3) equals (1, 6), and
    # one output column at time t equals the same column among two at time 2t.
    a = gradient_flow(NET, X_TRAIN, Y, X_TEST, t=3.0, learning_rate=2.0)
    b = gradient_flow(NET, X_TRAIN, Y, X_TEST, t=6.0, learning_rate=1.0)
    assert rel(a.mean, b.mean) < 1e-13 and rel(a.cov, b.cov) < 1e-13
    single = gradient_flow(NET, X_TRAIN, Y[:, 0], X_TEST, t=3.0)
    torch.testing.assert_close(single.mean[0, :, 0], a.mean[0, :, 0], rtol=1e-12, atol=0)
    assert single.mean.shape == (1, 5, 1)


def test_mean_solves_the_gradient_flow_ode():
    # d mean_test / dt = -(eta / N) Gtd (mean_train(t) - y); central differences have error
    # h^2 f'''/6, about 1e-9 relative here.
    t, h, eta = 5.0, 1e-3, 0.8
    test = gradient_flow(NET, X_TRAIN, Y, X_TEST, t=[t - h, t + h], learning_rate=eta)
    train = gradient_flow(NET, X_TRAIN, Y, t=t, learning_rate=eta)
    derivative = (test.mean[1] - test.mean[0]) / (2 * h)
    expected = -eta / Y.numel() * K_TD.ntk @ (train.mean[0] - Y)
    assert rel(derivative, expected) < 1e-7


def test_limits():
    times = [0.0, 1e14, math.inf]
    for get in ("nngp", "ntk"):
        pred = gradient_flow(NET, X_TRAIN, Y, X_TEST, t=times, get=get)
        assert float(pred.mean[0].abs().max()) == 0.0
        torch.testing.assert_close(pred.cov[0], K_TT, rtol=1e-14, atol=0)
        # the eigendecomposition at a very late time meets the Cholesky solve at t = inf
        assert rel(pred.mean[1], pred.mean[2]) < 1e-9
        assert rel(pred.cov[1], pred.cov[2]) < 1e-9
    # NNGP at t = inf is the exact (noiseless) Bayesian posterior (kernels.md)
    post = gp_posterior(NET, X_TRAIN, Y, X_TEST)
    nngp = gradient_flow(NET, X_TRAIN, Y, X_TEST, t=math.inf, get="nngp")
    assert rel(nngp.mean[0], post.mean) < 1e-12 and rel(nngp.cov[0], post.cov) < 1e-12
    assert (pred.variance >= 0).all()


def test_relative_diag_reg_is_trace_over_n():
    r = 0.05
    absolute = r * float(K_DD.ntk.trace()) / 12
    a = gradient_flow(NET, X_TRAIN, Y, X_TEST, t=[4.0, math.inf], diag_reg=r)
    b = gradient_flow(NET, X_TRAIN, Y, X_TEST, t=[4.0, math.inf], diag_reg=absolute,
                      diag_reg_absolute=True)
    assert rel(a.mean, b.mean) < 1e-13 and rel(a.cov, b.cov) < 1e-13


def test_accepts_kernel_objects_dicts_and_plain_matrices():
    pred = gradient_flow(NET, X_TRAIN, Y, X_TEST, t=[1.0, math.inf])
    again = gradient_flow_from_kernels({"nngp": K_DD.nngp, "ntk": K_DD.ntk}, Y, K_TD, K_TT,
                                       t=[1.0, math.inf])
    torch.testing.assert_close(again.mean, pred.mean, rtol=0, atol=0)
    mean_only = gradient_flow_from_kernels(K_DD.ntk, Y, K_TD.ntk, t=[1.0, math.inf],
                                           compute_cov=False)
    torch.testing.assert_close(mean_only.mean, pred.mean, rtol=0, atol=0)
    assert mean_only.cov is None
    with pytest.raises(InputValueError, match="needs its nngp kernel too"):
        gradient_flow_from_kernels(K_DD.ntk, Y, K_TD.ntk, K_TT)
    with pytest.raises(InputValueError, match="has no nngp matrix"):
        gradient_flow_from_kernels(wn.Kernel(nngp=None, ntk=K_DD.ntk), Y, K_TD, K_TT)
    with pytest.raises(InputValueError, match="k_test_test"):
        gradient_flow_from_kernels(K_DD, Y, K_TD)


def test_singular_kernel_finite_time_is_exact_and_infinite_time_warns():
    # duplicated training inputs make Gdd singular; at finite t the prediction is still
    # well defined (zero eigenvalues contribute s, not 0/0 = NaN as in neural-tangents)
    x = torch.cat([X_TRAIN, X_TRAIN[:3]])
    y = torch.cat([Y, Y[:3]])
    k_dd, k_td = NET.kernel(x), NET.kernel(X_TEST, x)
    pred = gradient_flow_from_kernels(k_dd, y, k_td, K_TT, t=[0.5, 20.0])
    for i, t in enumerate([0.5, 20.0]):
        f = filt(k_dd.ntk.numpy(), t / y.numel())
        assert rel(pred.mean[i], k_td.ntk.numpy() @ f @ y.numpy()) < 1e-9
    with pytest.warns(WidenetsWarning, match="added jitter"):
        inf = gradient_flow_from_kernels(k_dd, y, k_td, K_TT, t=math.inf)
    assert torch.isfinite(inf.mean).all() and torch.isfinite(inf.cov).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gradient_flow_from_kernels(k_dd, y, k_td, K_TT, t=math.inf, diag_reg=1e-6)


def test_hopeless_matrices_raise_naming_the_matrix():
    bad = -torch.eye(4, dtype=torch.float64)
    with pytest.raises(NotPositiveDefiniteError, match="train-train NTK"):
        gradient_flow_from_kernels(bad, torch.ones(4), torch.ones(2, 4), t=math.inf,
                                   compute_cov=False)
    with pytest.raises(NotPositiveDefiniteError, match="not positive semi-definite"):
        gradient_flow_from_kernels(bad, torch.ones(4), torch.ones(2, 4), t=1.0,
                                   compute_cov=False)
    nan = K_DD.ntk.clone()
    nan[0, 1] = math.nan
    with pytest.raises(InputValueError, match="k_train_train"):
        gradient_flow_from_kernels(nan, Y, t=1.0, compute_cov=False)


@pytest.mark.parametrize("kwargs,error,match", [
    ({"y_train": torch.randn(11, 2)}, ShapeError, r"`y_train` must be of shape \(12,\)"),
    ({"y_train": torch.full((12,), math.nan)}, InputValueError, "`y_train` must be finite"),
    ({"x_test": torch.randn(5, 4)}, ShapeError, "`x_test` must have shape"),
    ({"x_train": torch.full((12, 3), math.inf)}, InputValueError, "`x_train` must be finite"),
    ({"t": -1.0}, HyperparameterError, "`t` must be times >= 0"),
    ({"t": [1.0, math.nan]}, HyperparameterError, "`t` must be times >= 0"),
    ({"t": []}, HyperparameterError, "`t` must be at least one time"),
    ({"learning_rate": 0.0}, HyperparameterError, "`learning_rate` must be a finite number > 0"),
    ({"diag_reg": -1e-3}, HyperparameterError, "`diag_reg` must be a finite number >= 0"),
    ({"get": "gp"}, HyperparameterError, "`get` must be one of"),
])
def test_bad_inputs(kwargs, error, match):
    args = {"x_train": X_TRAIN, "y_train": Y, "x_test": X_TEST, **kwargs}
    with pytest.raises(error, match=match):
        gradient_flow(NET, args.pop("x_train"), args.pop("y_train"), args.pop("x_test"), **args)
