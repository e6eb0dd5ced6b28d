"""ReLU and other non-zero-mean activations: the two-order-parameter action (spec §3.6)."""

import math

import numpy as np
import pytest

import widenets as wn
from widenets.theory import proportional
from widenets.theory.proportional import action as A
from widenets.theory.proportional import kernels, parse_network
from widenets.theory.proportional import mean_corrected as M

from .helpers import dense_gp, mlp, regression_data


def setup(seed=0, n_train=40, n_in=60, priors=(1.0, 1.0)):
    x, y, xt, yt = regression_data(n_train, n_in, seed)
    arch = parse_network(mlp(wn.Relu(), [20], list(priors)))
    k = kernels.nngp(arch, x)
    m = kernels.activation_mean(arch.activation, kernels.last_hidden_variances(arch, x))
    return x, y, xt, yt, arch, k, m


def test_gradient_matches_finite_differences():
    _, y, _, _, _, k, m = setup()
    split = M.MeanSplit.of(k, m, 1.0, y.numpy())
    for a, b, t in ((1.3, 0.8, 0.05), (0.6, 2.0, 1.0), (2.0, 1.5, 1e-3)):
        grad = M.gradient(a, b, split, 20, t)
        h = 1e-6
        fd = [(M.action(a + h, b, split, 20, t) - M.action(a - h, b, split, 20, t)) / (2 * h),
              (M.action(a, b + h, split, 20, t) - M.action(a, b - h, split, 20, t)) / (2 * h)]
        np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-8)  # O(h^2) + rounding/h


def test_zero_mean_reduces_to_the_one_parameter_action():
    """m = 0: b = 1/(1+Q) = Qbar, and S(a, b) = S(Qbar) - 1 (spec §3.2 two-variable form)."""
    _, y, _, _, _, k, _ = setup()
    split = M.MeanSplit.of(k, np.zeros(len(k)), 1.0, y.numpy())
    spec = A.Spectrum.of(k, y.numpy())
    for t in (1e-3, 0.1):
        one = A.solve_one_hidden_layer(spec, 20, t)
        a, b = M.solve(split, 20, t, start=1.0)
        assert a == pytest.approx(one.qbar[0], rel=1e-9)
        assert b == pytest.approx(one.qbar[0], rel=1e-9)
        assert M.action(a, b, split, 20, t) == pytest.approx(one.action - 1, rel=1e-12)


def test_pure_mean_kernel_is_not_renormalised():
    """If phi(h) were constant (K_raw = m m^T) the output would be exactly Gaussian at any
    width; the two-parameter action gives Q = 0 (b = 1) and K_R = K_GP, the zero-mean action
    would wrongly rescale it."""
    rng = np.random.default_rng(0)
    m = rng.uniform(0.5, 1.5, 30)
    y = rng.standard_normal(30)
    split = M.MeanSplit.of(np.outer(m, m) / 2.0, m, 2.0, y)
    a, b = M.solve(split, 10, 0.1, start=1.0)
    assert b == pytest.approx(1.0, abs=1e-12)
    zero_mean = A.solve_one_hidden_layer(A.Spectrum.of(np.outer(m, m) / 2.0, y), 10, 0.1)
    assert abs(zero_mean.qbar[0] - 1) > 0.05


@pytest.mark.parametrize("mean_correction", [True, False])
def test_readout_order_parameter_is_qbar_by_the_envelope_theorem(mean_correction):
    """<lambda_1 |v|^2 / N_1> = 1 + lambda_1 dS*/dlambda_1 (differentiate ln Z in the readout
    precision): the claim that the measurable order parameter is Qbar in both actions."""
    x, y, _, _, _, _, _ = setup(seed=1)
    lam1, h = 1.5, 1e-5

    def solved(lam):
        net = mlp(wn.Relu(), [20], [1.0, lam])
        return proportional(net, x, y, temperature=0.05, mean_correction=mean_correction)

    th = solved(lam1)
    d_action = (solved(lam1 * (1 + h)).order_parameters.action
                - solved(lam1 * (1 - h)).order_parameters.action) / (2 * h * lam1)
    # central difference: truncation O(h^2), rounding ~ eps / h ~ 1e-11
    assert 1 + lam1 * d_action == pytest.approx(th.order_parameters.readout, rel=1e-7)
    assert (th.order_parameters.mean_scale is None) is not mean_correction


def test_mean_corrected_predictor_against_a_dense_gp():
    x, y, xt, yt, _, _, _ = setup(seed=2)
    th = proportional(mlp(wn.Relu(), [20], [1.0, 2.0]), x, y, temperature=0.05)
    a, b = th.order_parameters.qbar[0], th.order_parameters.mean_scale

    # independent kernel pieces: spec §2 ReLU kernel and m(c) = sqrt(c / 2 pi)
    def m(z):
        return np.sqrt((z.numpy() ** 2).sum(1) / z.shape[1] / (2 * math.pi))

    def kr(z1, z2):
        k = kernels.nngp_spec(z1.numpy(), z2.numpy(), "relu", [1.0, 2.0])
        mm = np.outer(m(z1), m(z2)) / 2.0
        return a * (k - mm) + b * mm

    mean, var, residual, train_var = dense_gp(kr(x, x), kr(xt, x), np.diag(kr(xt, xt)),
                                              y.numpy(), 0.05)
    pred = th.predict(xt)
    np.testing.assert_allclose(pred.mean.numpy(), mean, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(pred.variance.numpy(), var, rtol=1e-7, atol=1e-10)
    assert th.train_error().total == pytest.approx(((residual**2).sum() + train_var) / 40,
                                                   rel=1e-8)
    # the correction is small for Qbar but changes the kernel's shape (b != a)
    plain = proportional(mlp(wn.Relu(), [20], [1.0, 2.0]), x, y, temperature=0.05,
                         mean_correction=False)
    assert abs(a - plain.order_parameters.qbar[0]) < 0.05 * a
    assert abs(b - a) > 1e-3


def test_zero_temperature_on_a_singular_kernel_is_refused_with_a_way_out():
    x, y, _, _ = regression_data(40, 10, 3)  # P > N0: the ReLU kernel is still full rank,
    x = x[:, :1].repeat(1, 10)               # but inputs on a line make it rank deficient
    net = mlp(wn.Relu(), [20], [1.0, 1.0])
    with pytest.warns(wn.WidenetsWarning), pytest.raises(wn.WidenetsError, match="T = 0"):
        proportional(net, x, y, temperature=0.0)
    with pytest.warns(wn.WidenetsWarning):
        th = proportional(net, x, y, temperature=0.0, mean_correction=False)
    assert math.isfinite(th.order_parameters.qbar[0])
