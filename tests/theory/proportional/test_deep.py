"""Deep networks: one order parameter per layer, product renormalisation (spec §4)."""

import math
import warnings

import numpy as np
import pytest

import widenets as wn
from widenets.theory import proportional
from widenets.theory.proportional import action as A
from widenets.theory.proportional import deep as D
from widenets.theory.proportional import kernels, parse_network

from .helpers import mlp, regression_data


def spectrum(act, depth, priors=None, n_train=40, n_in=60, seed=0):
    x, y, _, _ = regression_data(n_train, n_in, seed)
    priors = priors or [1.0] * (depth + 1)
    arch = parse_network(mlp(act, [10] * depth, priors))
    return A.Spectrum.of(kernels.nngp(arch, x), y.numpy())


@pytest.mark.parametrize("act", [wn.Erf(), wn.Relu(), None])
@pytest.mark.parametrize("temperature", [0.0, 1e-3, 0.1, 1.0])
@pytest.mark.parametrize("width", [3, 20, 150])
def test_deep_solver_with_one_layer_is_the_one_layer_solver(act, temperature, width):
    """Two code paths (S minimised over Qbar; psi(u) = 0 with Qbar_l = 1 - u g(u)/N_l)."""
    spec = spectrum(act, 1)
    one = (A.solve_one_hidden_layer(spec, width, temperature) if temperature > 0
           else A.solve_zero_temperature(spec, width))
    deep = D.solve_deep(spec, [width], temperature)
    assert deep.qbar[0] == pytest.approx(one.qbar[0], rel=1e-11)
    assert deep.action == pytest.approx(one.action, rel=1e-11)
    assert deep.curvature[0, 0] == pytest.approx(one.curvature[0, 0], rel=1e-8)


@pytest.mark.parametrize("depth", [2, 3, 5])
@pytest.mark.parametrize("width", [10, 40, 400])
def test_zero_temperature_equal_widths_polynomial(depth, width):
    """Spec §4.2: Qbar^L (Qbar - 1 + alpha) = alpha r_L, all layers equal."""
    spec = spectrum(wn.Relu(), depth, [1.0] + [2.0] * depth)
    alpha, r = len(spec.values) / width, spec.r()
    saddle = D.solve_deep(spec, [width] * depth, 0.0)
    expected = D.equal_width_zero_temperature(alpha, r, depth)
    assert np.allclose(saddle.qbar, expected, rtol=1e-10)
    q = saddle.qbar[0]
    assert q**depth * (q - 1 + alpha) == pytest.approx(alpha * r, rel=1e-10)


def test_zero_temperature_unequal_widths_closed_system():
    """Qbar_l = 1 - alpha_l + alpha_l r / u with u = prod Qbar_l (spec §4.2)."""
    spec = spectrum(None, 3)
    widths = np.array([15.0, 60.0, 30.0])
    saddle = D.solve_deep(spec, widths, 0.0)
    q = np.array(saddle.qbar)
    alpha, u = len(spec.values) / widths, np.prod(q)
    np.testing.assert_allclose(q, 1 - alpha + alpha * spec.r() / u, rtol=1e-10)


def test_large_depth_limit():
    """Equal widths, T = 0, fixed r: Qbar_l = 1 + ln(r)/L + O(1/L^2) -> 1 and u -> r.  A
    linear network with unit priors has the same kernel (and r) at every depth."""
    spec = spectrum(None, 1)
    r, width = spec.r(), 20
    errors = []
    for depth in (10, 20, 40, 80):
        q = D.solve_deep(spec, [width] * depth, 0.0).qbar
        errors.append(abs(q[0] - 1 - math.log(r) / depth))
        assert np.prod(q) == pytest.approx(r, rel=5 / depth)
    # the remainder is O(1/L^2): each doubling of L divides it by about 4
    assert all(3.5 < a / b < 4.5 for a, b in zip(errors, errors[1:], strict=False))


def test_hessian_and_minimum():
    spec = spectrum(wn.Relu(), 2)
    widths = np.array([12.0, 25.0])
    saddle = D.solve_deep(spec, widths, 0.05)
    q = np.array(saddle.qbar)
    f0 = D.free_energy(q, spec, widths, 0.05)
    assert saddle.action == pytest.approx(f0 / widths[-1], rel=1e-12)
    h = 1e-4
    fd = np.empty((2, 2))
    for i in range(2):
        for j in range(2):
            def f(di, dj, i=i, j=j):
                p = q.copy()
                p[i] += di
                p[j] += dj
                return D.free_energy(p, spec, widths, 0.05)
            fd[i, j] = (f(h, h) - f(h, -h) - f(-h, h) + f(-h, -h)) / (4 * h * h)
    # central differences of F (O(10)): truncation O(h^2), rounding O(eps F / h^2) ~ 1e-7
    np.testing.assert_allclose(saddle.curvature * widths[-1], fd, rtol=1e-5, atol=1e-5)
    assert np.all(np.linalg.eigvalsh(saddle.curvature) > 0)
    rng = np.random.default_rng(0)
    for _ in range(50):
        assert D.free_energy(q * np.exp(0.05 * rng.standard_normal(2)), spec, widths,
                             0.05) > f0


def test_deep_networks_warn_where_the_theory_is_uncontrolled():
    x, y, _, _ = regression_data(30, 40, 1)
    with pytest.warns(wn.WidenetsWarning, match="nested and product"):
        proportional(mlp(wn.Erf(), [20, 20], [1.0] * 3), x, y, temperature=0.01)
    with pytest.warns(wn.WidenetsWarning, match="mean of Relu is not accounted"):
        proportional(mlp(wn.Relu(), [20, 20], [1.0] * 3), x, y, temperature=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        th = proportional(mlp(None, [20, 20], [1.0] * 3), x, y, temperature=0.01)
    assert th.order_parameters.renormalisation == pytest.approx(
        np.prod(th.order_parameters.qbar), rel=1e-14)


def test_deep_relu_renormalises_the_depth_l_kernel_by_u():
    x, y, xt, _ = regression_data(30, 40, 2)
    net = mlp(wn.Relu(), [20, 30], [1.0, 2.0, 2.0])
    with pytest.warns(wn.WidenetsWarning):
        th = proportional(net, x, y, temperature=0.01)
    u = th.order_parameters.renormalisation
    np.testing.assert_allclose(th.renormalised_kernel, u * th.kernel, rtol=1e-14)
    gp = th.infinite_width()
    assert th.predict(xt).mean.shape == gp.predict(xt).mean.shape == (50,)


def test_li_sompolinsky_mean_field_equations():
    """Spec §5: in Li & Sompolinsky's variables (one prior variance sigma^2 = 1/lambda for every
    layer, u_l = sigma^2 Qbar_l, input kernel K = sigma^2 X X^T / N0, r_LS = y^T K^-1 y / P)
    the T = 0 saddle point satisfies u_l = sigma^2 (1 - alpha_l) + sigma^2 alpha_l r_LS /
    (u_1 ... u_L) -- an independent transcription of their equations."""
    x, y, _, _ = regression_data(30, 50, 4)
    lam, widths = 2.5, [40, 90, 60]
    th = proportional(mlp(None, widths, [lam] * 4), x, y, temperature=0.0)
    sigma2 = 1 / lam
    u = sigma2 * np.array(th.order_parameters.qbar)
    k_ls = sigma2 * (x @ x.T).numpy() / x.shape[1]
    r_ls = float(y.numpy() @ np.linalg.solve(k_ls, y.numpy())) / len(y)
    alpha = len(y) / np.array(widths)
    np.testing.assert_allclose(u, sigma2 * (1 - alpha) + sigma2 * alpha * r_ls / np.prod(u),
                               rtol=1e-9)
