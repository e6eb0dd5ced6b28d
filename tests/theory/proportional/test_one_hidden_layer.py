"""The one-hidden-layer action, its saddle point and the renormalised-kernel predictor
(spec §3.2-3.5), against closed forms, limits and a dense GP."""

import itertools
import math

import numpy as np
import pytest
import torch

import widenets as wn
from widenets.theory import proportional
from widenets.theory.proportional import action as A
from widenets.theory.proportional import kernels, parse_network

from .helpers import dense_gp, mlp, regression_data

ACTS = [wn.Erf(), wn.Relu(), None]


def spectrum(act, priors=(1.0, 1.0), n_train=40, n_in=60, seed=0, scale=1.0):
    x, y, _, _ = regression_data(n_train, n_in, seed)
    arch = parse_network(mlp(act, [10], list(priors)))
    return A.Spectrum.of(kernels.nngp(arch, x), scale * y.numpy())


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("width", [2, 6, 24, 96])
def test_zero_temperature_closed_form_is_the_minimiser(act, width):
    spec = spectrum(act, priors=(1.0, 2.0))
    closed = A.zero_temperature_qbar(spec, width)
    solved = A.solve_one_hidden_layer(spec, width, 0.0).qbar[0]
    # brute force, independent of the root bracketing: the argmin of S on a fine log grid
    grid = np.exp(np.linspace(math.log(closed) - 0.01, math.log(closed) + 0.01, 20001))
    brute = grid[np.argmin(A.action(grid, spec, width, 0.0))]
    assert solved == pytest.approx(closed, rel=1e-12)  # Brent to machine precision
    assert brute == pytest.approx(closed, rel=2e-6)     # grid spacing 1e-6 in log Qbar


def test_saddle_is_the_unique_minimum_over_many_configurations():
    """Spec §3.3: in 576 configurations the root was unique.  Here 192: S' changes sign once
    on a fine grid, the solver's Qbar is the argmin, and the curvature is positive and equal to
    a finite-difference second derivative."""
    grid = np.logspace(-6, 6, 4001)
    for act, priors, seed in itertools.product(ACTS, [(1.0, 1.0), (0.5, 4.0)], [0, 1]):
        spec = spectrum(act, priors, seed=seed)
        for temp, width in itertools.product([1e-4, 0.01, 0.1, 1.0], [2, 6, 24, 96]):
            _check_unique_minimum(spec, grid, temp, width)


def _check_unique_minimum(spec, grid, temp, width):
    slope = grid - 1 + grid * A.data_derivatives(grid, spec, temp)[0] / width
    assert np.count_nonzero(np.diff(np.sign(slope))) == 1
    saddle = A.solve_one_hidden_layer(spec, width, temp)
    q = saddle.qbar[0]
    assert A.action(grid, spec, width, temp).min() >= saddle.action - 1e-12
    h = 1e-4 * q
    fd = (A.action(q + h, spec, width, temp) - 2 * saddle.action
          + A.action(q - h, spec, width, temp)) / h**2
    # central difference: O(h^2) truncation, O(eps S / h^2) rounding
    assert saddle.curvature[0, 0] > 0
    assert saddle.curvature[0, 0] == pytest.approx(fd, rel=1e-5, abs=1e-6)


def test_small_load_limit_at_zero_temperature():
    """alpha -> 0: Qbar = 1 + alpha (r - 1) + O(alpha^2) (spec §3.3)."""
    spec = spectrum(wn.Erf())
    n, r = len(spec.values), spec.r()
    for alpha in (1e-2, 1e-3, 1e-4):
        q = A.zero_temperature_qbar(spec, n / alpha)
        # the O(alpha^2) remainder is alpha^2 r (r - 1) (expand the quadratic's root)
        assert abs(q - 1 - alpha * (r - 1)) <= 1.01 * alpha**2 * abs(r * (r - 1))


def test_large_load_and_r_equal_one():
    spec = spectrum(wn.Erf())
    n, r = len(spec.values), spec.r()
    # alpha -> infinity: Qbar -> r
    assert A.zero_temperature_qbar(spec, n / 1e8) == pytest.approx(r, rel=1e-6)
    # r = 1 gives Qbar = 1 for every alpha
    unit = spectrum(wn.Erf(), scale=1 / math.sqrt(r))
    assert unit.r() == pytest.approx(1.0, rel=1e-12)
    for width in (1, 3, 40, 1000):
        assert A.zero_temperature_qbar(unit, width) == pytest.approx(1.0, rel=1e-12)


def test_small_temperature_is_continuous_with_zero_temperature():
    for act in ACTS:
        spec = spectrum(act)
        for width in (5, 50):
            closed = A.zero_temperature_qbar(spec, width)
            assert A.solve_one_hidden_layer(spec, width, 1e-10).qbar[0] == pytest.approx(
                closed, rel=1e-6)


def test_rank_deficient_pseudo_inverse_rule():
    """Linear network with P > N0: K has rank N0; the T = 0 rule of spec §3.3 (rank/N_1 and
    y^T K^+ y / N_1) is the T -> 0+ limit of the T > 0 saddle point."""
    spec = spectrum(None, n_train=40, n_in=10)
    assert spec.positive.sum() == 10
    for width in (4, 20, 200):
        closed = A.zero_temperature_qbar(spec, width)
        assert A.solve_one_hidden_layer(spec, width, 1e-9).qbar[0] == pytest.approx(
            closed, rel=1e-6)
        # the full-rank formula with alpha = P/N_1 would be different
        r_full = spec.r()
        alpha = 40 / width
        naive = 0.5 * ((1 - alpha) + math.sqrt((1 - alpha) ** 2 + 4 * alpha * r_full))
        assert abs(naive - closed) > 1e-3


@pytest.mark.parametrize("act", [wn.Erf(), None])
@pytest.mark.parametrize("temperature", [0.0, 0.05])
def test_predictor_is_the_gp_with_renormalised_kernel(act, temperature):
    x, y, xt, yt = regression_data(40, 60, 2)
    net = mlp(act, [15], [1.0, 1.5])
    th = proportional(net, x, y, temperature=temperature)
    q = th.order_parameters.qbar[0]
    arch = parse_network(net)
    k, k0 = kernels.nngp(arch, x), kernels.nngp(arch, xt, x)
    k00 = np.diag(kernels.nngp(arch, xt))
    mean, var, residual, train_var = dense_gp(q * k, q * k0, q * k00, y.numpy(), temperature)
    pred = th.predict(xt)
    np.testing.assert_allclose(pred.mean.numpy(), mean, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(pred.variance.numpy(), var, rtol=1e-7, atol=1e-10)
    err = th.test_error(xt, yt)
    assert err.bias_squared == pytest.approx(((yt.numpy() - mean) ** 2).mean(), rel=1e-9)
    assert err.variance == pytest.approx(var.mean(), rel=1e-7)
    assert float(err) == err.bias_squared + err.variance
    train = th.train_error()
    assert train.bias_squared == pytest.approx((residual**2).mean(), rel=1e-8, abs=1e-14)
    assert train.variance == pytest.approx(train_var / 40, rel=1e-8, abs=1e-14)


def test_small_load_gives_the_infinite_width_gp():
    """alpha -> 0 (N_1 -> infinity) at T > 0: predictions converge to the NNGP posterior, with
    a gap proportional to alpha."""
    x, y, xt, _ = regression_data(40, 60, 3)
    gp = None
    gaps = []
    for width in (4_000, 40_000, 400_000):
        th = proportional(mlp(wn.Erf(), [width], [1.0, 1.0]), x, y, temperature=0.05)
        gp = gp or th.infinite_width()
        assert gp.order_parameters.qbar == (1.0,)
        gaps.append(float((th.predict(xt).variance - gp.predict(xt).variance).abs().max()))
        assert abs(th.order_parameters.qbar[0] - 1) < 200 / width
    assert gaps[1] / gaps[0] == pytest.approx(0.1, rel=0.02)  # linear in alpha, O(alpha) drift
    assert gaps[2] / gaps[1] == pytest.approx(0.1, rel=0.02)


def test_finite_width_equals_infinite_width_with_rescaled_readout_prior():
    """Spec §3.4 (Aiudi et al.): a finite 1HL net predicts like an infinite one whose readout
    prior is lambda_1 / Qbar."""
    x, y, xt, _ = regression_data(30, 50, 4)
    th = proportional(mlp(wn.Erf(), [10], [1.0, 2.0]), x, y, temperature=0.02)
    q = th.order_parameters.qbar[0]
    wide = proportional(mlp(wn.Erf(), [10], [1.0, 2.0 / q]), x, y, temperature=0.02)
    gp = wide.infinite_width()
    np.testing.assert_allclose(th.predict(xt).mean, gp.predict(xt).mean, rtol=1e-10)
    np.testing.assert_allclose(th.predict(xt).variance, gp.predict(xt).variance, rtol=1e-10)


def test_zero_temperature_finite_beats_infinite_iff_r_below_one():
    """Spec §3.5: at T = 0 the mean is the kernel interpolant (independent of Qbar) and the
    variance is Qbar times the GP variance, so eps_finite < eps_GP exactly when r < 1."""
    x, y, xt, yt = regression_data(30, 50, 5)
    for scale in (0.05, 0.2, 5.0):
        net = mlp(wn.Erf(), [10], [1.0, 1.0])
        th = proportional(net, x, scale * y, temperature=0.0)
        gp = th.infinite_width()
        q, r = th.order_parameters.qbar[0], th.order_parameters.r
        np.testing.assert_allclose(th.predict(xt).mean, gp.predict(xt).mean, rtol=1e-9)
        np.testing.assert_allclose(th.predict(xt).variance, q * gp.predict(xt).variance,
                                   rtol=1e-9)
        finite, infinite = th.test_error(xt, scale * yt), gp.test_error(xt, scale * yt)
        assert (r < 1) == (q < 1) == (float(finite) < float(infinite))
        assert th.train_error().total == pytest.approx(0.0, abs=1e-20)  # interpolation


def test_effective_temperature_pitfall():
    """Spec §8: a mean loss (1/P) 1/2 sum (y - f)^2 at temperature T is the sum loss at P T;
    the theory takes the sum convention, so the two give different Qbar."""
    spec = spectrum(wn.Erf())
    n = len(spec.values)
    t_sum = A.solve_one_hidden_layer(spec, 20, 0.01).qbar[0]
    t_mean = A.solve_one_hidden_layer(spec, 20, 0.01 * n).qbar[0]
    assert abs(t_sum - t_mean) > 0.1


def test_readout_prior_scales_the_kernel():
    """lambda is a precision: doubling lambda_1 halves K_GP, i.e. doubles r."""
    x, y, _, _ = regression_data(20, 30, 6)
    r1 = proportional(mlp(wn.Erf(), [10], [1.0, 1.0]), x, y, temperature=0).order_parameters.r
    r2 = proportional(mlp(wn.Erf(), [10], [1.0, 2.0]), x, y, temperature=0).order_parameters.r
    assert r2 == pytest.approx(2 * r1, rel=1e-12)
    assert torch.is_tensor(x)
