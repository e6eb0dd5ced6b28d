"""The criticality solver against independent high-precision arithmetic (mpmath).

Definitions: GELU(z) = z Phi(z) with the exact normal CDF; SWISH(z) = z / (1 + e^{-z});
erf the plain error function (effective_theory.md §3.3).  The mpmath references use other
formulas than the solver (the non-zero roots of <sigma sigma''> with sigma'' written out by
hand, Taylor coefficients by mpmath.diff) at 20 significant digits; 1e-10 relative is the
acceptance target of "at least 9 digits" with a margin.
"""

import math

import mpmath as mp
import pytest
import torch

import widenets as wn
from widenets.errors import HyperparameterError, WidenetsError
from widenets.theory.effective import single
from widenets.theory.effective.activations import ActivationInfo

mp.mp.dps = 20


def _gauss(f, k):
    s = mp.sqrt(k)
    return mp.quad(lambda x: f(s * x) * mp.npdf(x), [-mp.inf, 0, mp.inf])


def _sig(z):
    return 1 / (1 + mp.exp(-z))


HALF_STABLE = {
    "gelu": (wn.Gelu(), lambda z: z * mp.ncdf(z), lambda z: mp.ncdf(z) + z * mp.npdf(z),
             lambda z: mp.npdf(z) * (2 - z * z)),
    "swish": (wn.Silu(), lambda z: z * _sig(z),
              lambda z: _sig(z) + z * _sig(z) * (1 - _sig(z)),
              lambda z: _sig(z) * (1 - _sig(z)) * (2 + z * (1 - 2 * _sig(z)))),
}


@pytest.mark.parametrize("name", sorted(HALF_STABLE))
def test_half_stable_constants_against_mpmath(name):
    act, f, f1, f2 = HALF_STABLE[name]
    c = wn.theory.criticality(act)
    assert c.universality_class == "half-stable"
    k = mp.findroot(lambda kk: _gauss(lambda z: f(z) * f2(z), kk), mp.mpf(c.fixed_point))
    cw = 1 / _gauss(lambda z: f1(z) ** 2, k)
    cb = k - cw * _gauss(lambda z: f(z) ** 2, k)
    assert c.fixed_point == pytest.approx(float(k), rel=1e-10)
    assert c.weight_var == pytest.approx(float(cw), rel=1e-10)
    assert c.bias_var == pytest.approx(float(cb), rel=1e-10)
    print(f"{name}: C_b = {c.bias_var:.12f}, C_W = {c.weight_var:.12f}, K* = {c.fixed_point:.12f}"
          f" | mpmath {mp.nstr(cb, 13)}, {mp.nstr(cw, 13)}, {mp.nstr(k, 13)}")


def test_gelu_fixed_point_is_three_plus_root_17_over_two():
    """An observation of the spec (§3.3), confirmed: K* = (3 + sqrt 17)/2 for GELU."""
    assert wn.theory.criticality(wn.Gelu()).fixed_point == pytest.approx(
        (3 + math.sqrt(17)) / 2, rel=1e-12)


@pytest.mark.parametrize("act, f, a1", [
    (wn.Tanh(), mp.tanh, -2.0), (wn.Erf(), mp.erf, -2.0), (wn.Sin(), mp.sin, -1.0)],
    ids=["tanh", "erf", "sin"])
def test_zero_class_constants_against_mpmath(act, f, a1):
    c = wn.theory.criticality(act)
    s1, s2, s3 = (mp.diff(f, 0, k) for k in (1, 2, 3))
    assert c.universality_class == "K*=0"
    assert (c.bias_var, c.fixed_point) == (0.0, 0.0)
    assert c.weight_var == pytest.approx(float(1 / s1**2), rel=1e-12)
    assert c.a1 == pytest.approx(float(s3 / s1 + mp.mpf(3) / 4 * (s2 / s1) ** 2), rel=1e-10)
    assert c.a1 == pytest.approx(a1, rel=1e-12)
    assert c.p_perp == pytest.approx(1.0, rel=1e-10)  # tanh, sin (spec §7); also erf


@pytest.mark.parametrize("act, slopes", [
    (wn.Relu(), (1, 0)), (wn.LeakyRelu(0.01), (1, 0.01)), (wn.LeakyRelu(0.1), (1, 0.1)),
    (wn.Identity(), (1, 1)), (wn.Abs(), (1, -1))], ids=str)
def test_scale_invariant_constants_against_mpmath(act, slopes):
    a_plus, a_minus = (mp.mpf(s) for s in slopes)
    c = wn.theory.criticality(act)
    d2 = _gauss(lambda z: a_plus**2 if z > 0 else a_minus**2, 1)
    s2 = _gauss(lambda z: (a_plus * z if z > 0 else a_minus * z) ** 2, 1)
    s4 = _gauss(lambda z: (a_plus * z if z > 0 else a_minus * z) ** 4, 1)
    assert c.universality_class == "scale-invariant"
    assert c.weight_var == pytest.approx(float(1 / d2), rel=1e-12)
    assert c.bias_var == 0.0 and c.fixed_point is None
    assert c.nu == pytest.approx(float(s4 / s2**2 - 1), rel=1e-12)


def test_known_values_of_the_table():
    """effective_theory.md §3.3 (leaky ReLU 1.999800 and 1.980198; nu of §3.4)."""
    assert wn.theory.criticality(wn.LeakyRelu(0.01)).weight_var == pytest.approx(1.99980002,
                                                                                  rel=1e-8)
    assert wn.theory.criticality(wn.LeakyRelu(0.1)).weight_var == pytest.approx(1.98019802,
                                                                                 rel=1e-8)
    assert wn.theory.criticality(wn.Relu()).nu == 5.0
    gelu, swish = wn.theory.criticality(wn.Gelu()), wn.theory.criticality(wn.Silu())
    assert gelu.point.curvature == pytest.approx(-1.436e-4, rel=1e-3)
    assert swish.point.curvature == pytest.approx(2.85e-6, rel=1e-2)
    assert gelu.nu == pytest.approx(4.9042, abs=1e-4)
    assert swish.nu == pytest.approx(4.9232, abs=1e-4)
    # the unusable K* = 0 points (a1 > 0: small kernels grow)
    assert [p.curvature for p in gelu.points if p.kind == "K*=0"][0] == pytest.approx(
        0.75 * (2 * 0.3989422804014327 / 0.5) ** 2, rel=1e-12)
    assert [p.usable for p in swish.points if p.kind == "K*=0"] == [False]


@pytest.mark.parametrize("act", [wn.Gelu(), wn.Silu()], ids=repr)
def test_susceptibilities_are_one_at_the_critical_point(act):
    c = wn.theory.criticality(act)
    info = ActivationInfo(act)
    assert single.chi_parallel(info, c.fixed_point, c.weight_var) == pytest.approx(1, abs=1e-11)
    chi_perp = single.chi_perpendicular(info, c.fixed_point, c.weight_var)
    assert chi_perp == pytest.approx(1, abs=1e-12)
    kmap = c.bias_var + c.weight_var * single.moments(info, c.fixed_point)["s2"]
    assert kmap == pytest.approx(c.fixed_point, rel=1e-12)


@pytest.mark.parametrize("act", [wn.Sigmoid(), wn.Softplus()], ids=repr)
def test_no_criticality_is_a_clear_answer(act):
    c = wn.theory.criticality(act)
    assert c.universality_class == "none"
    assert c.message.startswith("no criticality:")
    assert str(c).startswith("no criticality:")
    with pytest.raises(WidenetsError, match="no criticality"):
        c.weight_var


def test_bad_activation_arguments():
    with pytest.raises(HyperparameterError, match="`activation` must be one of"):
        wn.theory.criticality("swishy")
    with pytest.raises(HyperparameterError, match="continuous"):
        wn.theory.criticality(wn.Sign())
    with pytest.raises(HyperparameterError, match="`activation` must be a widenets"):
        wn.theory.criticality(torch.tanh)
    assert wn.theory.criticality("gelu").universality_class == "half-stable"
