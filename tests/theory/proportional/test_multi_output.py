"""Several outputs: the matrix order parameter (spec §3.7)."""

import numpy as np
import pytest
import torch
from scipy.stats import ortho_group

import widenets as wn
from widenets.theory import proportional
from widenets.theory.proportional import action as A
from widenets.theory.proportional import kernels, parse_network
from widenets.theory.proportional import multi_output as MO

from .helpers import mlp, regression_data


def spectrum(y, seed=0, n_in=60):
    x, _, _, _ = regression_data(len(y), n_in, seed)
    arch = parse_network(mlp(wn.Erf(), [10], [1.0, 1.0]))
    return A.Spectrum.of(kernels.nngp(arch, x), y)


def labels(n, d, seed):
    return np.random.default_rng(seed).standard_normal((n, d))


def test_gradient_matches_finite_differences():
    spec = spectrum(labels(30, 3, 0))
    qbar = np.array([[1.2, 0.3, -0.1], [0.3, 0.9, 0.2], [-0.1, 0.2, 1.5]])
    grad = MO.gradient(qbar, spec, 12, 0.05)
    h = 1e-6
    for i, j in ((0, 0), (0, 1), (1, 2), (2, 2)):
        e = np.zeros((3, 3))
        e[i, j] = e[j, i] = h
        fd = (MO.action(qbar + e, spec, 12, 0.05) - MO.action(qbar - e, spec, 12, 0.05)) / (2 * h)
        expected = grad[i, j] * (1 if i == j else 2)
        assert fd == pytest.approx(expected, rel=1e-6, abs=1e-8)


@pytest.mark.parametrize("width", [5, 30, 300])
def test_zero_temperature_closed_form_is_the_minimiser(width):
    spec = spectrum(labels(30, 3, 1))
    closed = MO.zero_temperature(spec, width)
    numeric = MO.solve(spec, width, 0.0, np.eye(3))
    np.testing.assert_allclose(numeric, closed, rtol=1e-7, atol=1e-9)


def test_one_output_matrix_solver_is_the_scalar_solver():
    spec = spectrum(labels(30, 1, 2))
    for t in (1e-3, 0.1, 1.0):
        scalar = A.solve_one_hidden_layer(spec, 12, t).qbar[0]
        assert MO.solve(spec, 12, t, np.eye(1))[0, 0] == pytest.approx(scalar, rel=1e-8)
    assert MO.zero_temperature(spec, 12)[0, 0] == pytest.approx(
        A.zero_temperature_qbar(spec, 12), rel=1e-12)


def test_outputs_on_disjoint_eigenvectors_decouple():
    """If y_1 and y_2 live on disjoint eigenvectors of K, Qbar is diagonal and each entry is
    the one-output solution of its own labels (any T)."""
    base = spectrum(labels(30, 1, 3))
    u = base.vectors
    rng = np.random.default_rng(4)
    y = np.zeros((30, 2))
    y[:, 0] = u[:, 0::2] @ rng.standard_normal(15)
    y[:, 1] = u[:, 1::2] @ rng.standard_normal(15)
    spec = A.Spectrum.of(u @ np.diag(base.values) @ u.T, y)
    qbar = MO.solve(spec, 8, 0.1, np.eye(2))
    for a in range(2):
        single = A.solve_one_hidden_layer(A.Spectrum.of(u @ np.diag(base.values) @ u.T,
                                                        y[:, a]), 8, 0.1).qbar[0]
        assert qbar[a, a] == pytest.approx(single, rel=1e-7)
    assert abs(qbar[0, 1]) < 1e-7


def test_rotating_the_outputs_rotates_qbar_and_the_predictions():
    """Qbar(Y O) = O^T Qbar(Y) O; predictions rotate with the labels."""
    x, _, xt, _ = regression_data(30, 60, 5)
    y = torch.as_tensor(labels(30, 3, 6))
    o = torch.as_tensor(ortho_group.rvs(3, random_state=7))
    net = mlp(wn.Erf(), [10], [1.0, 1.0], n_outputs=3)
    th = proportional(net, x, y, temperature=0.05)
    rot = proportional(net, x, y @ o, temperature=0.05)
    q, qr = th.order_parameters.qbar[0], rot.order_parameters.qbar[0]
    np.testing.assert_allclose(qr, o.numpy().T @ q @ o.numpy(), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(rot.predict(xt).mean, th.predict(xt).mean @ o, rtol=1e-6,
                               atol=1e-8)
    assert th.predict(xt).mean.shape == (50, 3)
    assert th.order_parameters.readout == pytest.approx(np.trace(q) / 3, rel=1e-12)
    # the curvature is positive definite in the 6 free entries of Qbar
    assert np.all(np.linalg.eigvalsh(th.order_parameters.curvature) > 0)


def test_multi_output_deep_network_is_refused():
    x, _, _, _ = regression_data(20, 30, 0)
    with pytest.raises(wn.WidenetsError, match="one hidden layer"):
        proportional(mlp(wn.Erf(), [10, 10], [1.0] * 3, n_outputs=2), x,
                     torch.zeros(20, 2, dtype=torch.float64), temperature=0.1)


def test_infinite_width_with_several_outputs_is_independent_gps():
    """At Qbar = I the outputs are independent NNGP posteriors; errors average over outputs
    (the sampler's convention)."""
    x, _, xt, _ = regression_data(25, 40, 8)
    y, yt = torch.as_tensor(labels(25, 2, 9)), torch.as_tensor(labels(50, 2, 10))
    gp = proportional(mlp(wn.Erf(), [10], [1.0, 1.0], n_outputs=2), x, y,
                      temperature=0.1).infinite_width()
    singles = [proportional(mlp(wn.Erf(), [10], [1.0, 1.0]), x, y[:, a],
                            temperature=0.1).infinite_width() for a in range(2)]
    pred = gp.predict(xt)
    assert pred.mean.shape == pred.variance.shape == (50, 2)
    for a, single in enumerate(singles):
        np.testing.assert_allclose(pred.mean[:, a], single.predict(xt).mean, rtol=1e-10)
        np.testing.assert_allclose(pred.variance[:, a], single.predict(xt).variance, rtol=1e-10)
    assert gp.test_error(xt, yt).total == pytest.approx(
        np.mean([s.test_error(xt, yt[:, a]).total for a, s in enumerate(singles)]), rel=1e-10)
    assert gp.train_error().total == pytest.approx(
        np.mean([s.train_error().total for s in singles]), rel=1e-10)
