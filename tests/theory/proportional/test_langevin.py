"""The theory against networks sampled by the project's Langevin sampler (acceptance 2).

Every comparison samples real finite networks with ``widenets.finite.langevin`` (MALA, so
no step-size bias; repriorised readout; 4 chains) and compares the posterior-averaged test
error, training error and readout order parameter ``lambda_1 |v|^2 / N_1`` with the theory.
Standard errors are the sampler's own (ArviZ, autocorrelation- and chain-aware).

* Where the theory applies (one hidden layer, isotropic inputs with N0 = 2P, effective
  dimension ~ 0.67 P, N1 >= 100; deep linear networks): agreement within 4 standard errors,
  while the infinite-width GP is rejected (the tests have power).  The gap on Qbar closes
  like 1/N1.
* Where it is only approximate (ReLU with labels that have a mean; deep ReLU), the size and
  the 1/N scaling of the gaps are asserted and printed.
* Where it does not (MNIST 0/1: effective input dimension ~5 for P = 100, spec §8), the
  theory overestimates the test and training errors of the sampled networks; that
  disagreement is asserted (a documented limitation, with the warning), not hidden.

Run with ``pytest -m slow -s tests/theory/proportional/test_langevin.py`` to see the table
(P = 100, T = 0.05; about 5-20 min per sampled configuration on 2 shared cores, 9 tests).
"""

import numpy as np
import pytest

import widenets as wn
from widenets.finite.langevin import sample_posterior
from widenets.theory import proportional
from widenets.theory.proportional import exact_deep_linear
from widenets.theory.proportional.tasks import two_class_task

from .helpers import mlp, regression_data

pytestmark = pytest.mark.slow

TEMPERATURE = 0.05
STEPS = 4000
KEYS = ("test_mse", "train_mse", "order_parameter")


_CACHE: dict = {}


def _measure(net, x, y, xt, yt, seed=0):
    """Sample (once per network and data; tests share runs through this cache).  The key
    holds the labels too: ``y + 2`` on the same inputs is a different posterior."""
    key = (net.to_json(), *(t.numpy().tobytes() for t in (x, y, xt, yt)), seed)
    if key not in _CACHE:
        samples = sample_posterior(net, x, y, temperature=TEMPERATURE, n_steps=STEPS,
                                   x_test=xt, y_test=yt, n_chains=4, reprioritize=True,
                                   seed=seed)
        assert max(samples.rhat.values()) < 1.1, samples.rhat
        summary = samples.summary()
        _CACHE[key] = ({k: summary[k] for k in KEYS}, samples)
    return _CACHE[key]


def _predicted(theory, xt, yt):
    return {"test_mse": theory.test_error(xt, yt).total,
            "train_mse": theory.train_error().total,
            "order_parameter": theory.order_parameters.readout}


def _z(measured, predicted):
    return {k: (measured[k][0] - predicted[k]) / measured[k][1] for k in KEYS}


def _report(label, measured, predicted, gp):
    z, z_gp = _z(measured, predicted), _z(measured, gp)
    cells = "  ".join(f"{k} {measured[k][0]:.4f}+-{measured[k][1]:.4f} theory {predicted[k]:.4f}"
                      f" (z {z[k]:+.1f}; GP z {z_gp[k]:+.1f})" for k in KEYS)
    print(f"\n{label}: {cells}")
    return z, z_gp


def _gaussian_task():
    return regression_data(100, 200, 0, n_test=500)


@pytest.mark.parametrize("act", [wn.Erf(), wn.Relu()], ids=["erf", "relu"])
@pytest.mark.parametrize("width", [100, 200])
def test_one_hidden_layer_against_sampled_networks(act, width):
    """N1 >= 100: the theory's O(1/N1) error on Qbar (see the next test) is below the
    statistical resolution of 4 chains x 4000 steps.  Measured z (test, train, Qbar):
    erf 100: -0.2, +0.9, +1.8; erf 200: +1.1, +1.0, +0.5; ReLU 100: -1.2, -1.7, -2.0;
    ReLU 200: +0.8, -1.9, -0.7 (the GP: |z| 8-180)."""
    x, y, xt, yt = _gaussian_task()
    net = mlp(act, [width], [1.0, 10.0])
    theory = proportional(net, x, y, temperature=TEMPERATURE)
    gp = _predicted(theory.infinite_width(), xt, yt)
    measured, _ = _measure(net, x, y, xt, yt)
    z, z_gp = _report(f"1HL {type(act).__name__} N1={width}", measured, _predicted(
        theory, xt, yt), gp)
    if isinstance(act, wn.Relu):  # the zero-mean action, for the record (spec §3.6)
        plain = proportional(net, x, y, temperature=TEMPERATURE, mean_correction=False)
        _report("   (zero-mean action)", measured, _predicted(plain, xt, yt), gp)
    assert all(abs(v) < 4 for v in z.values()), z
    # power: the infinite-width GP is rejected on the training error and order parameter
    assert abs(z_gp["train_mse"]) > 4 and abs(z_gp["order_parameter"]) > 4


@pytest.mark.parametrize("act", [wn.Erf(), wn.Relu()], ids=["erf", "relu"])
def test_one_hidden_layer_at_a_smaller_training_set(act):
    """P = 50 (N0 = 100, N1 = 100, alpha = 1/2): the same comparison on a second training-set
    size.  Measured z (test, train, Qbar): erf +0.3, +2.2, +0.9; ReLU +0.1, +0.1, -0.7 (the
    GP's test error is only 1-3 SE off at this P; its Qbar = 1 is 80 SE off)."""
    x, y, xt, yt = regression_data(50, 100, 1, n_test=500)
    net = mlp(act, [100], [1.0, 10.0])
    theory = proportional(net, x, y, temperature=TEMPERATURE)
    gp = _predicted(theory.infinite_width(), xt, yt)
    measured, _ = _measure(net, x, y, xt, yt)
    z, z_gp = _report(f"1HL {type(act).__name__} P=50 N1=100", measured,
                      _predicted(theory, xt, yt), gp)
    assert all(abs(v) < 4 for v in z.values()), z
    assert abs(z_gp["order_parameter"]) > 4


def _gap_times_width(measured, predicted, width, key="order_parameter"):
    mean, se = measured[key]
    return width * (mean - predicted[key]), width * se


def test_relu_mean_correction_against_sampled_networks():
    """Labels with a mean (y + 2) make the activation-mean part of the ReLU kernel matter
    (spec §3.6).  The two-parameter action is much closer to the sampled networks than the
    zero-mean action on Qbar and the test error; its remaining Qbar gap is a finite-width
    correction c / N1 (c = -9.2 +- 1.0 at N1 = 50, -9.5 +- 1.2 at N1 = 100; -8.1 +- 1.6 at
    N1 = 200 in a separate run), so it does *not* reach 4-SE agreement at N1 <= 200
    (measured at N1 = 100: Qbar 3.619 vs 3.715, z = -8.3; test 0.508 vs 0.498, z = +4.8).
    That shortfall is reported here, not hidden."""
    x, y, xt, yt = _gaussian_task()
    y, yt = y + 2.0, yt + 2.0
    gaps = []
    for width in (50, 100):
        net = mlp(wn.Relu(), [width], [1.0, 10.0])
        theory = _predicted(proportional(net, x, y, temperature=TEMPERATURE), xt, yt)
        plain = _predicted(proportional(net, x, y, temperature=TEMPERATURE,
                                        mean_correction=False), xt, yt)
        gp = _predicted(proportional(net, x, y, temperature=TEMPERATURE).infinite_width(),
                        xt, yt)
        measured, _ = _measure(net, x, y, xt, yt)
        z, _ = _report(f"1HL Relu N1={width}, y + 2, two-parameter action", measured, theory,
                       gp)
        z_plain, _ = _report("   (zero-mean action)", measured, plain, gp)
        for key in ("order_parameter", "test_mse"):
            assert abs(z[key]) < abs(z_plain[key]) / 2
        assert abs(z_plain["order_parameter"]) > 4
        assert abs(measured["train_mse"][0] / theory["train_mse"] - 1) < 0.05
        gaps.append(_gap_times_width(measured, theory, width))
    (c1, s1), (c2, s2) = gaps
    assert abs(c1) > 4 * s1 and abs(c1 - c2) < 4 * np.hypot(s1, s2)


def test_order_parameter_error_shrinks_like_one_over_width():
    """At N1 = 25, 50, 100 (P = 100) the sampled Qbar exceeds the saddle point by a finite-
    width correction c / N1: N1 (Qbar_sampled - Qbar_theory) is the same constant c at every
    width within 4 combined standard errors (a width-independent gap would give c growing
    fourfold), and the gap at N1 = 25 is resolved (> 4 SE).  Measured: c = 3.3, 3.3, 2.1."""
    x, y, xt, yt = _gaussian_task()
    cs, ses = [], []
    for width in (25, 50, 100):
        net = mlp(wn.Erf(), [width], [1.0, 10.0])
        theory = proportional(net, x, y, temperature=TEMPERATURE)
        measured, _ = _measure(net, x, y, xt, yt)
        mean, se = measured["order_parameter"]
        cs.append(width * (mean - theory.order_parameters.readout))
        ses.append(width * se)
        print(f"\nN1={width}: Qbar {mean:.4f}+-{se:.4f}, theory "
              f"{theory.order_parameters.readout:.4f}, N1 x gap {cs[-1]:.2f}+-{ses[-1]:.2f}")
    assert cs[0] > 4 * ses[0]
    for i in range(3):
        for j in range(i):
            assert abs(cs[i] - cs[j]) < 4 * np.hypot(ses[i], ses[j])


def test_two_hidden_layer_relu_against_sampled_networks():
    """Deep ReLU with the product renormalisation (spec §4.2-4.3, which ignores the activation
    mean).  The test error agrees within 4 SE; the readout order parameter carries a large
    finite-width bias c / N (c = -14.0 +- 1.1 at N = 50, -17.6 +- 1.1 at 100, -17.4 +- 1.7
    at 200 in a separate run: z = -13, -16, -10), and the training error of the sampled
    networks is 3 %, 6 % and 9 % below the theory.  Reported, not hidden; the deep *linear*
    control below agrees, so this is the nonlinear approximation, not the machinery."""
    x, y, xt, yt = _gaussian_task()
    gaps = []
    for width in (50, 100):
        net = mlp(wn.Relu(), [width, width], [1.0, 0.5, 10.0])
        with pytest.warns(wn.WidenetsWarning, match="mean of Relu"):
            theory = proportional(net, x, y, temperature=TEMPERATURE)
        gp = _predicted(theory.infinite_width(), xt, yt)
        predicted = _predicted(theory, xt, yt)
        measured, samples = _measure(net, x, y, xt, yt)
        z, z_gp = _report(f"2HL ReLU ({width}, {width})", measured, predicted, gp)
        # hidden weights barely move: lambda |W|^2 / #weights = 1 + O(P / (N1 N2))
        assert np.allclose(samples.layer_order.mean(0)[:2].numpy(), 1.0, atol=0.05)
        assert abs(z["test_mse"]) < 4 and abs(z_gp["train_mse"]) > 4
        assert abs(measured["train_mse"][0] / predicted["train_mse"] - 1) < 0.1
        gaps.append(_gap_times_width(measured, predicted, width))
    (c1, s1), (c2, s2) = gaps
    assert c1 < -4 * s1 and abs(c1 - c2) < 4 * np.hypot(s1, s2)


def test_two_hidden_layer_linear_against_the_exact_posterior():
    """Positive control for the deep machinery (sampler, priors per layer, product
    renormalisation): a 2HL linear network, where the theory of spec §4.1 is exact."""
    x, y, xt, yt = _gaussian_task()
    net = mlp(None, [100, 100], [1.0, 0.5, 10.0])
    exact = exact_deep_linear(net, x, y, temperature=TEMPERATURE)
    saddle = proportional(net, x, y, temperature=TEMPERATURE)
    gp = _predicted(saddle.infinite_width(), xt, yt)
    measured, _ = _measure(net, x, y, xt, yt)
    z, z_gp = _report("2HL linear (100, 100), exact", measured, _predicted(exact, xt, yt), gp)
    z_saddle, _ = _report("   (saddle point)", measured, _predicted(saddle, xt, yt), gp)
    assert all(abs(v) < 4 for v in z.values()) and all(abs(v) < 4 for v in z_saddle.values())
    assert abs(z_gp["order_parameter"]) > 4 and abs(z_gp["test_mse"]) > 4


def test_low_input_dimension_disagreement_is_reported():
    """MNIST 0/1 (2x2 pooled, N0 = 196 > P = 100, but effective dimension ~5): the theory
    warns, and it overestimates the sampled networks' test and training errors (the sampled
    nets learn features the scalar renormalisation cannot describe).  Measured with seed 0:
    test 0.044 (theory 0.052), train 0.029 (0.034), Qbar 1.670 (1.636) at N1 = 100."""
    task = two_class_task("mnist", 100, 500, pool=2)
    net = mlp(wn.Erf(), [100], [1.0, 10.0])
    with pytest.warns(wn.WidenetsWarning, match="effective dimension"):
        theory = proportional(net, task.x_train, task.y_train, temperature=TEMPERATURE)
    gp = _predicted(theory.infinite_width(), task.x_test, task.y_test)
    predicted = _predicted(theory, task.x_test, task.y_test)
    measured, _ = _measure(net, task.x_train, task.y_train, task.x_test, task.y_test)
    z, _ = _report("MNIST 0/1 1HL Erf N1=100", measured, predicted, gp)
    assert z["test_mse"] < -4 and z["train_mse"] < -4
