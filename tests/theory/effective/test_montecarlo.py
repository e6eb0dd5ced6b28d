"""The Monte Carlo machinery itself: same networks as ``net.module()``, same law, unbiased.

Statistical tolerances are 4 standard errors computed from the samples (jackknife over 50
groups of networks); seeds are fixed.  Exact references (layer 2, ReLU at any width) need no
extrapolation, so these tests pin the estimators down before the slow width sweeps use them.
"""

import math

import numpy as np
import pytest
import torch

import widenets as wn
from widenets.finite.empirical import empirical_ntk_jacobian
from widenets.theory.effective import estimators as est
from widenets.theory.effective import exact
from widenets.theory.effective import montecarlo as mc

X2 = torch.tensor([[1.0, 0.5, -0.3], [0.2, -0.8, 0.9]], dtype=torch.float64)


@pytest.mark.parametrize("act", [wn.Tanh(), wn.Relu()], ids=repr)
def test_batched_forward_and_ntk_equal_the_modules(act):
    th = wn.theory.effective(act, depth=4, widths=[6, 9, 5], bias_var=0.2, weight_var=1.4,
                             lambda_b=0.2, lambda_W=1.4)
    net = th.network(out_features=3)
    models = [net.module(seed=s, in_shape=(3,)) for s in range(3)]
    batch = mc.forward(th, mc.from_modules(models), X2, ntk=True)
    for s, model in enumerate(models):
        with torch.no_grad():
            torch.testing.assert_close(batch.z[s], model(X2).T, rtol=1e-13, atol=1e-14)
            last = model[:-1](X2)
        torch.testing.assert_close(batch.metric[s], 0.2 + 1.4 * last @ last.T / 5)
        ntk = empirical_ntk_jacobian(model, X2, output_axes="full")  # (n1, n2, k, k)
        torch.testing.assert_close(batch.ntk[s], ntk.permute(2, 3, 0, 1), rtol=1e-12,
                                   atol=1e-13)


def _stats(batches, n):
    pre = est.preactivations(est.preactivation_stats(batches), n)
    return {**pre, **est.ntk(est.ntk_stats(batches), n)}


def _zscore(a, b):
    (va, sa), (vb, sb) = a, b
    return float(((va - vb).abs() / torch.sqrt(sa**2 + sb**2)).max())


def test_sampled_parameters_have_the_law_of_net_module():
    """Two-sample test: every estimator agrees between networks built by ``net.module()`` and
    networks whose parameters we draw ourselves (within 4 SE of the difference)."""
    th = wn.theory.effective(wn.Tanh(), depth=3, widths=8, bias_var=0.3, weight_var=1.5,
                             lambda_b=0.3, lambda_W=1.5)
    net, s = th.network(out_features=3), 1500
    built = mc.forward(th, mc.from_modules([net.module(seed=i, in_shape=(3,)) for i in range(s)]),
                       X2, ntk=True)
    drawn = mc.forward(th, mc.sample_parameters(th, 3, 3, s, torch.Generator().manual_seed(0)),
                       X2, ntk=True)
    a, b = _stats([built], 8), _stats([drawn], 8)
    for key in ("metric", "V", "H", "A", "B", "D", "F"):
        assert _zscore(a[key], b[key]) < 4, key
    for w_built, w_drawn in zip(mc.from_modules([net.module(0, in_shape=(3,))]).weights,
                                mc.sample_parameters(th, 3, 3, 1, torch.Generator()).weights,
                                strict=True):
        assert w_built.shape == w_drawn.shape


def test_stochastic_metric_has_the_law_of_networks():
    th = wn.theory.effective(wn.Tanh(), depth=4, widths=[6, 10, 7], bias_var=0.1,
                             weight_var=1.2)
    gen = torch.Generator().manual_seed(1)
    s = 4000
    nets = mc.forward(th, mc.sample_parameters(th, 3, 2, s, gen), X2)
    smp = mc.stochastic_metric(th, X2, s, gen)
    a = est.preactivations(est.preactivation_stats([nets]), 7)
    b = est.preactivations(est.preactivation_stats([smp]), 7)
    for key in ("metric", "V", "V_outputs"):
        assert _zscore(a[key], b[key]) < 4, key


@pytest.mark.parametrize("width, depth", [(8, 4), (16, 6)])
def test_relu_metric_variance_is_exact_at_finite_width(width, depth):
    """Var(G)/K^2 = (1 + 5/n)^(L-1) - 1 exactly (effective_theory.md §5): no extrapolation."""
    th = wn.theory.effective(wn.Relu(), depth=depth, widths=width, weight_var=2.0)
    x = X2[:1]
    batch = mc.stochastic_metric(th, x, 40000, torch.Generator().manual_seed(width))
    g = batch.metric[:, 0, 0]
    mean, mean_se = est.jackknife({"g": g}, lambda m: m["g"])
    var, var_se = est.jackknife({"g": g, "g2": g * g}, lambda m: m["g2"] - m["g"] ** 2)
    ex = exact.scale_invariant_moments(wn.Relu(), th.widths, th.bias_var, th.weight_var,
                                       float((x * x).mean()))
    assert abs(float(mean) - ex["M1"][-1]) < 4 * float(mean_se)
    assert abs(float(var) - ex["variance"][-1]) < 4 * float(var_se)
    k = ex["M1"][-1]
    assert ex["variance"][-1] == pytest.approx(k * k * ((1 + 5 / width) ** (depth - 1) - 1))


def test_layer_two_estimators_are_unbiased_at_any_width():
    """At L = 2 the theory is exact (only local terms): networks built by ``net.module()`` at
    width 8 match K, V, H, A, B, D, F within 4 SE without extrapolation."""
    th = wn.theory.effective(wn.Tanh(), depth=2, widths=8, bias_var=0.2, weight_var=1.6,
                             lambda_b=0.2, lambda_W=1.6)
    net, s = th.network(out_features=4), 3000
    batch = mc.forward(th, mc.from_modules([net.module(seed=i, in_shape=(3,)) for i in range(s)]),
                       X2[:1], ntk=True)
    got = _stats([batch], 8)
    theory = th.ntk_fluctuations(X2[:1])
    for key, name in [("metric", "K"), ("V", "V"), ("H", "H"), ("A", "A"), ("B", "B"),
                      ("D", "D"), ("F", "F")]:
        value, se = got[key]
        expected = getattr(theory, name)[-1]
        z = float(((value - expected).abs() / se).max())
        assert z < 4, (key, float(value.flatten()[0]), float(expected.flatten()[0]))


def test_jackknife_and_fit():
    g = torch.randn(1000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    mean, se = est.jackknife({"g": g}, lambda m: m["g"])
    assert float(mean) == pytest.approx(float(g.mean()), rel=1e-12)
    assert float(se) == pytest.approx(float(g.std() / math.sqrt(1000)), rel=0.25)
    widths = np.array([16, 32, 64, 128])
    values = 2.0 - 3.0 / widths + 5.0 / widths**2
    fit = est.fit_inverse_width(widths, values, np.full(4, 0.01), order=2)
    assert fit.intercept == pytest.approx(2.0, rel=1e-10) and fit.dof == 1
    assert fit.slopes == pytest.approx((-3.0, 5.0), rel=1e-8)
