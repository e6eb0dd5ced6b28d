"""The quadrature rules against closed forms and an independent reference integrator.

Tolerances: the rules target ~1e-13 relative (effective_theory.md §12); 1e-11 leaves room
for the rounding of sums over up to 1e5 nodes.  The 2-D reference
(tests/reference_integrals.py) is itself accurate to ~1e-12.
"""

import math

import numpy as np
import pytest
import torch

import widenets as wn
from tests.reference_integrals import expectation
from widenets.errors import NotPositiveDefiniteError
from widenets.theory.effective import gaussian
from widenets.theory.effective.activations import ActivationInfo
from widenets.theory.effective.recursions import _joint, _pairs

CLOSED = [wn.Relu(), wn.LeakyRelu(0.1), wn.Erf(), wn.Gelu(), wn.Sin(), wn.Identity()]


def _k(v1, v2, rho):
    c = rho * math.sqrt(v1 * v2)
    return torch.tensor([[v1, c], [c, v2]], dtype=torch.float64)


@pytest.mark.parametrize("act", CLOSED, ids=repr)
@pytest.mark.parametrize("k", [1e-3, 0.3, 2.0, 40.0])
def test_one_input_rule_matches_closed_form(act, k):
    info = ActivationInfo(act)
    r = gaussian.rule(torch.tensor([[k]], dtype=torch.float64), 4)
    s, d = info.function(r.z[0]), info.derivative(r.z[0])
    v = torch.tensor(k, dtype=torch.float64)
    e_ss, e_dd = act.dual(v, v, v, True)
    assert float(r.mean(s * s)) == pytest.approx(float(e_ss), rel=1e-11)
    assert float(r.mean(d * d)) == pytest.approx(float(e_dd), rel=1e-11)
    assert float(r.weight.sum()) == pytest.approx(1.0, rel=1e-14)


@pytest.mark.parametrize("act", CLOSED, ids=repr)
@pytest.mark.parametrize("v1, v2, rho", [(1.0, 1.0, 0.3), (2.5, 0.4, -0.7), (30.0, 20.0, 0.95),
                                         (0.05, 0.06, 0.9)])
def test_two_input_rule_matches_closed_form(act, v1, v2, rho):
    k = _k(v1, v2, rho)
    info = ActivationInfo(act)
    r = gaussian.rule(k, 6)  # erf' at K = 30 is a spike of width 0.09 sd: needs level 6
    s, d = info.function(r.z), info.derivative(r.z)
    v = torch.diagonal(k)
    e_ss, e_dd = act.dual(k, v[:, None], v[None, :], True)
    torch.testing.assert_close(r.mean(_pairs(s, s)), e_ss, rtol=1e-11,
                               atol=1e-13 * float(v.max()))
    torch.testing.assert_close(r.mean(_pairs(d, d)), e_dd, rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("v1, v2, rho", [(1.0, 1.0, 0.3), (8.0, 3.0, -0.8)])
def test_two_input_rule_matches_reference_for_tanh(v1, v2, rho):
    k = _k(v1, v2, rho)
    r = gaussian.rule(k, 4)
    s = torch.tanh(r.z)
    ours = float(r.mean(s[0] ** 2 * s[1] ** 2))
    ref = expectation(lambda u: np.tanh(u) ** 2, lambda v: np.tanh(v) ** 2, k[0, 1].item(), v1, v2)
    assert ours == pytest.approx(ref, rel=1e-11)


@pytest.mark.parametrize("act", [wn.Erf(), wn.Gelu(), wn.Relu()], ids=repr)
def test_response_tensor_is_the_derivative_of_the_closed_form(act):
    """Identity I3: <sigma_a sigma_b (w_c w_d - K^cd)>/2 = d<sigma_a sigma_b>/dK_cd, the
    latter by autograd of the closed-form dual kernel with K_cd, K_dc as separate entries."""
    k = _k(1.3, 0.8, 0.4)
    info = ActivationInfo(act)
    r = gaussian.rule(k, 3)
    s = info.function(r.z)
    ss = _pairs(s, s)
    y = _joint(r, ss, _pairs(r.w, r.w) - r.kinv[:, :, None]) / 2

    def dual(kk):
        v = torch.diagonal(kk)
        return act.dual(kk, v[:, None], v[None, :], False)[0]

    jac = torch.autograd.functional.jacobian(dual, k)
    # the closed form reads K_01 and K_10 from different entries; a symmetric perturbation
    # moves both, so compare with the symmetrised Jacobian
    torch.testing.assert_close(y, (jac + jac.transpose(2, 3)) / 2, rtol=1e-10, atol=1e-12)


def test_parallel_inputs_are_refused():
    with pytest.raises(NotPositiveDefiniteError, match="parallel"):
        gaussian.rule(_k(1.0, 1.0, 1.0), 2)
    with pytest.raises(NotPositiveDefiniteError, match="> 0"):
        gaussian.rule(torch.zeros(1, 1, dtype=torch.float64), 2)
