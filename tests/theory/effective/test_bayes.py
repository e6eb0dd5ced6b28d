"""Finite-width posterior mean (effective_theory.md §6).  The Monte Carlo check against the
exact posterior over the stochastic metric is slow (test_acceptance_mc.py)."""

import math

import pytest
import torch

import widenets as wn
from widenets.errors import ShapeError, WidenetsWarning
from widenets.theory.effective.bayes import posterior_mean

X = torch.tensor([[1.0, 0.5, -0.3], [0.2, -0.8, 0.9]], dtype=torch.float64)


def test_one_input_one_output_is_the_edgeworth_conditional_mean():
    """With y = z + noise, the cumulants give E[z|y] = P y + (1-P) V (y^3 - 3 G~ y)/(2n G~^3)
    (derived independently from the fourth cumulant 3V/n shared by z and y)."""
    th = wn.theory.effective(wn.Tanh(), depth=4, widths=64)
    s = th.kernel(X[:1])
    g, v, n = float(s.metric()[0, 0]), float(s.V[-1].reshape(())), 64
    noise = 0.3 * g
    gt = g + noise
    y = 1.3 * math.sqrt(g)
    p = g / gt
    expected = p * y + (1 - p) * v * (y**3 - 3 * gt * y) / (2 * n * gt**3)
    res = th.posterior_mean(X[:1], torch.tensor([[y]], dtype=torch.float64), noise_var=noise)
    assert float(res["mean"][0, 0]) == pytest.approx(expected, rel=1e-12)
    assert float(res["gp"][0, 0]) == pytest.approx(p * y, rel=1e-12)


def test_wiring_between_outputs():
    """Observing output 2 moves the prediction of output 1 (PDLT §6.4.2); at infinite width
    it would not."""
    th = wn.theory.effective(wn.Relu(), depth=3, widths=128, weight_var=2.0)
    y1 = [[0.5, 0.0]]
    y2 = [[0.5, 2.0]]
    a = posterior_mean(th, X[:1], torch.tensor(y1, dtype=torch.float64), X[1:], noise_var=0.1)
    b = posterior_mean(th, X[:1], torch.tensor(y2, dtype=torch.float64), X[1:], noise_var=0.1)
    assert float(a["gp"][0, 0]) == float(b["gp"][0, 0])
    assert abs(float(a["mean"][0, 0] - b["mean"][0, 0])) > 1e-3


def test_unreliable_posterior_warns_and_bad_shapes_raise():
    th = wn.theory.effective(wn.Relu(), depth=4, widths=64, weight_var=2.0)
    g = float(th.kernel(X[:1]).metric()[0, 0])
    y = torch.full((1, 3), 2.5 * math.sqrt(g), dtype=torch.float64)  # the spec's bad case
    with pytest.warns(WidenetsWarning, match="unreliable"):
        posterior_mean(th, X[:1], y, X[1:], noise_var=0.1)
    with pytest.raises(ShapeError, match="`y_train` must be of shape"):
        posterior_mean(th, X[:1], torch.ones(2, 1), X[1:])
    with pytest.raises(ShapeError, match="at most 2 inputs"):
        posterior_mean(th, X, torch.ones(2, 1), X[:1])
