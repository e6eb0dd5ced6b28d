"""Spec §8 (pitfalls: sign, scaling and temperature conventions; multiple roots) as tests.

Where a pitfall is tested elsewhere the test is named here instead of repeated:

* ``lambda`` is a precision and ``C = x.x' / (lambda_0 N0)``: ``test_kernels.py``
  (``test_engine_matches_spec_recursion``, ``test_precision_mapping_against_sampled_networks``,
  which rejects the variance reading) and ``test_one_hidden_layer.py::
  test_readout_prior_scales_the_kernel``;
* the sum-vs-mean loss (effective temperature ``P T``): ``test_one_hidden_layer.py::
  test_effective_temperature_pitfall`` and, against sampled networks, ``test_langevin.py``;
* the test error is bias^2 + variance and ``Qbar > 0`` multiplies the variance (the NMI code's
  ``-Qbar``): ``test_one_hidden_layer.py::
  test_zero_temperature_finite_beats_infinite_iff_r_below_one``;
* the T = 0 pseudo-inverse rule: ``test_one_hidden_layer.py::
  test_rank_deficient_pseudo_inverse_rule``;
* the ReLU mean and deep erf: ``test_mean_corrected.py``, ``test_deep.py`` (warnings);
* low input dimension: ``test_api.py`` (warning) and ``test_langevin.py`` (measured).
"""

import math
import warnings

import numpy as np
import pytest
import torch

import widenets as wn
from widenets.finite.posterior import Posterior
from widenets.theory import proportional
from widenets.theory.proportional import action as A
from widenets.theory.proportional import deep as D
from widenets.theory.proportional import kernels, parse_network

from .helpers import mlp, regression_data


def _dense_action(q, k, y, width, temperature):
    """Spec §3.2 literally: ``Qbar - ln Qbar + (alpha_1/P)[ln det(T + Qbar K) + y^T (.)^-1 y]``."""
    p = len(y)
    a = temperature * np.eye(p) + q * k
    logdet = np.linalg.slogdet(a)[1]
    return q - math.log(q) + (p / width) / p * (logdet + y @ np.linalg.solve(a, y))


def test_action_spellings_agree():
    """The eigenbasis action equals the dense ``(alpha_1/P)`` form; the ``Tr ln beta(1/beta +
    Qbar K)`` spelling differs by the constant ``P ln(beta) / N_1`` (same saddle point); the
    two-variable form ``-Q Qbar + ln(1 + Q) + ...`` is stationary at ``Q = 1/Qbar - 1`` where
    it equals ``S - 1``; ``Qbar K_raw / lambda_1`` is ``Qbar K_GP``."""
    x, y, _, _ = regression_data(30, 50, 11)
    lam1, width, t = 2.5, 12, 0.07
    net = mlp(wn.Erf(), [width], [1.3, lam1])
    k = kernels.nngp(parse_network(net), x)
    k_raw = kernels.nngp_spec(x.numpy(), None, "erf", [1.3, 1.0])
    np.testing.assert_allclose(k_raw / lam1, k, rtol=1e-12, atol=1e-15)
    y = y.numpy()
    spec = A.Spectrum.of(k, y)
    beta = 1 / t
    for q in (0.3, 1.0, 2.7):
        dense = _dense_action(q, k, y, width, t)
        # float64 slogdet/solve on a 30 x 30 matrix: agreement to ~1e-13 relative
        assert float(A.action(q, spec, width, t)) == pytest.approx(dense, rel=1e-11)
        tr_ln_beta = dense + 30 * math.log(beta) / width
        assert tr_ln_beta - dense == pytest.approx(30 * math.log(beta) / width, rel=1e-12)
        big_q = 1 / q - 1
        two_var = -big_q * q + math.log(1 + big_q) + (dense - q + math.log(q))
        assert two_var == pytest.approx(dense - 1, rel=1e-12)
        assert -q + 1 / (1 + big_q) == pytest.approx(0.0, abs=1e-15)  # dS/dQ = 0 there
    saddle = proportional(net, x, torch.as_tensor(y), temperature=t).order_parameters.qbar[0]
    grid = np.exp(np.linspace(math.log(saddle) - 0.02, math.log(saddle) + 0.02, 4001))
    dense_min = grid[np.argmin([_dense_action(q, k, y, width, t) for q in grid])]
    assert saddle > 0  # the NMI-era code stores -Qbar: never a negative order parameter
    assert dense_min == pytest.approx(saddle, rel=2e-5)  # grid spacing 1e-5 in ln Qbar


def test_sampler_energy_is_the_gibbs_weight_of_the_theory():
    """The sampler that validates the theory must target spec §1 exactly: ``U = (1/2T) sum
    (y - f)^2 + sum_l (lambda_l / 2) |W_l|^2`` with the loss a *sum*, the temperature on the
    likelihood only, and each precision on the *effective* weights of its own layer
    (including the first, the bug of a released version of the authors' package).  ``f`` is
    recomputed here from spec §1's formula, independently of the torch module."""
    x, y, _, _ = regression_data(7, 5, 12)
    priors = [1.7, 0.6, 3.2]
    t = 0.13
    arch = parse_network(mlp(wn.Relu(), [6, 4], priors))
    model = arch.network().module(seed=3, in_shape=(5,))
    # Posterior is internal: it takes validated (n, k) targets (sample_posterior reshapes)
    posterior = Posterior(model, x, y[:, None], t, priors=list(priors))
    params = {name: p.detach().unsqueeze(0) for name, p in model.named_parameters()}
    energy, _ = posterior.energy(posterior.whiten(params))
    denses = [m for m in model.modules() if hasattr(m, "weight_std")]
    effective = [m.weight_std * m.weight.detach() for m in denses]  # NTK: std x stored
    h = x
    for w in effective[:-1]:
        h = torch.relu(h @ w.T / math.sqrt(w.shape[1]))
    f = (h @ effective[-1].T / math.sqrt(effective[-1].shape[1]))[:, 0]
    expected = 0.5 * float(((y - f) ** 2).sum()) / t + sum(
        lam / 2 * float((w**2).sum()) for lam, w in zip(priors, effective, strict=True))
    assert float(energy[0]) == pytest.approx(expected, rel=1e-12)
    # each prior term is on its own layer: moving lambda_0 changes U by dlambda |W_0|^2 / 2
    shifted = Posterior(model, x, y[:, None], t, priors=[priors[0] + 1.0, *priors[1:]])
    params_shifted = shifted.whiten(params)
    assert float(shifted.energy(params_shifted)[0][0]) == pytest.approx(
        expected + 0.5 * float((effective[0] ** 2).sum()), rel=1e-12)


@pytest.mark.slow
def test_prior_acts_on_every_layer_without_data():
    """Spec §8's product test: with the likelihood switched off (T huge) the sampled
    ``lambda_l |W_l|^2 / #entries`` averages 1 for every layer and the readout."""
    from widenets.finite.langevin import sample_posterior

    x, y, _, _ = regression_data(5, 6, 13)
    net = mlp(wn.Relu(), [8, 5], [1.0, 1.0, 1.0])
    priors = [2.0, 0.5, 4.0]  # != the initialisation: the chains must move to the prior
    samples = sample_posterior(net, x, y, temperature=1e9, n_steps=1200, priors=priors,
                               n_chains=4, seed=1)
    layers = samples.layer_order.mean(0).numpy()
    se = samples.mcse("layer_order").numpy()
    # Monte Carlo tolerance: 4 autocorrelation-aware standard errors per layer
    assert np.all(np.abs(layers - 1) < 4 * se), (layers, se)
    assert np.all(se < 0.05)  # and the test has power against a skipped layer (mean 1/lambda)


def _bimodal_spectrum(z2_low: float) -> A.Spectrum:
    """Five small and five large eigenvalues (1.3e-3 and 4.2e3) with large label components:
    at N_1 = 3, T = 1 the action has two minima (Qbar ~ 0.37 and ~ 37) whose order swaps as
    the labels on the small eigenvalues grow (found by a random search over such spectra)."""
    k = np.array([1.34426160e-03] * 5 + [4.15433667e03] * 5)
    z2 = np.array([z2_low] * 5 + [570.68659859] * 5)
    return A.Spectrum(k, np.eye(10), np.sqrt(z2)[:, None], 0.0)


def test_two_minima_take_the_global_one_and_warn_on_a_tie():
    """Spec §3.3 found a unique root in 576 realistic configurations, but it is not unique in
    general.  Both solvers must take the global minimum of S and warn when two minima tie."""
    grid = np.exp(np.linspace(math.log(1e-3), math.log(1e4), 400_001))
    for z2_low in (496.0, 506.0):  # on either side of the switch: the global minimum moves
        spec = _bimodal_spectrum(z2_low)
        values = A.action(grid, spec, 3, 1.0)
        slope = np.diff(values)
        assert np.count_nonzero((slope[:-1] < 0) & (slope[1:] >= 0)) == 2  # two minima
        brute = grid[np.argmin(values)]
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            one = A.solve_one_hidden_layer(spec, 3, 1.0).qbar[0]
            deep = D.solve_deep(spec, [3], 1.0).qbar[0]
        # grid spacing 4e-5 in ln Qbar
        assert one == pytest.approx(brute, rel=1e-4) and deep == pytest.approx(one, rel=1e-10)
    tie = _bimodal_spectrum(501.23879004706606)  # equal actions to ~1e-10 (tuned by Brent)
    with pytest.warns(wn.WidenetsWarning, match="two minima"):
        A.solve_one_hidden_layer(tie, 3, 1.0)
    with pytest.warns(wn.WidenetsWarning, match="two minima"):
        D.solve_deep(tie, [3], 1.0)

