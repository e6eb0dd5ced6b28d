"""Closed-form dual kernels against an independent 2-D integration, to 1e-12.

The reference (tests/reference_integrals.py) integrates in whitened polar coordinates with
the angle split at the kinks: it shares nothing with the arc-cosine/arcsine formulas under
test.  ReLU-type and erf kernels are also checked against the alternative closed forms of
effective_theory.md §2 (arcsin decomposition ``sigma = p z + d |z|``).
"""

import math

import numpy as np
import pytest
import torch
from scipy import special

import widenets as wn
from tests.reference_integrals import expectation

POINTS = [(0.3, 1.0, 2.0), (-1.2, 1.5, 1.1), (0.0, 0.7, 0.4), (0.93, 0.9, 0.98)]


def _abrelu(a, b):
    return (lambda u: a * np.minimum(u, 0) + b * np.maximum(u, 0),
            lambda u: np.where(u > 0, b, a))


def _gelu(u):
    return u * special.ndtr(u)


def _dgelu(u):
    return special.ndtr(u) + u * np.exp(-u * u / 2) / np.sqrt(2 * np.pi)


CASES = [
    (wn.Relu(), *_abrelu(0, 1)),
    (wn.LeakyRelu(0.2), *_abrelu(0.2, 1)),
    (wn.ABRelu(-0.3, 0.9), *_abrelu(-0.3, 0.9)),
    (wn.Abs(), *_abrelu(-1, 1)),
    (wn.Erf(1.2, 0.7, 0.1), lambda u: 1.2 * special.erf(0.7 * u) + 0.1,
     lambda u: 1.2 * 0.7 * 2 / np.sqrt(np.pi) * np.exp(-0.49 * u * u)),
    (wn.Gelu(), _gelu, _dgelu),
    (wn.Sin(0.8, 1.3, 0.4), lambda u: 0.8 * np.sin(1.3 * u + 0.4),
     lambda u: 0.8 * 1.3 * np.cos(1.3 * u + 0.4)),
    (wn.Cos(1.0, 0.9, 0.2), lambda u: np.cos(0.9 * u + 0.2),
     lambda u: -0.9 * np.sin(0.9 * u + 0.2)),
    (wn.Rbf(0.6), lambda u: np.sqrt(2) * np.sin(np.sqrt(1.2) * u + np.pi / 4),
     lambda u: np.sqrt(2) * np.sqrt(1.2) * np.cos(np.sqrt(1.2) * u + np.pi / 4)),
    (wn.Exp(0.6, 0.5), lambda u: 0.6 * np.exp(0.5 * u), lambda u: 0.3 * np.exp(0.5 * u)),
    (wn.Gaussian(1.1, -0.7), lambda u: 1.1 * np.exp(-0.7 * u * u),
     lambda u: -1.54 * u * np.exp(-0.7 * u * u)),
    (wn.Monomial(3), lambda u: u**3, lambda u: 3 * u**2),
    (wn.Monomial(0), lambda u: np.ones_like(u), lambda u: np.zeros_like(u)),
    (wn.Polynomial((0.1, -0.5, 0.3, 0.2)), lambda u: 0.1 - 0.5 * u + 0.3 * u**2 + 0.2 * u**3,
     lambda u: -0.5 + 0.6 * u + 0.6 * u**2),
    (wn.RectifiedMonomial(0), lambda u: (u >= 0) * 1.0, lambda u: np.zeros_like(u)),
    (wn.RectifiedMonomial(1), lambda u: np.maximum(u, 0), lambda u: (u > 0) * 1.0),
    (wn.RectifiedMonomial(3), lambda u: (u >= 0) * u**3, lambda u: (u >= 0) * 3 * u**2),
    (wn.Sign(), np.sign, lambda u: np.zeros_like(u)),
    (wn.Identity(), lambda u: u, lambda u: np.ones_like(u)),
]


def _dual(layer, c, v1, v2):
    t = [torch.tensor(x, dtype=torch.float64) for x in (c, v1, v2)]
    k, kdot = layer.dual(*t, True)
    return float(k), float(kdot)


@pytest.mark.parametrize("layer, f, df", CASES, ids=[repr(case[0]) for case in CASES])
@pytest.mark.parametrize("c, v1, v2", POINTS)
def test_dual_matches_integral(layer, f, df, c, v1, v2):
    k, kdot = _dual(layer, c, v1, v2)
    ref_k = expectation(f, f, c, v1, v2)
    ref_kdot = expectation(df, df, c, v1, v2)
    # 1e-12 relative to the kernel's scale: float64 rounding of the closed forms, with the
    # reference itself good to ~1e-14 (test_reference_integrals)
    scale = max(abs(ref_k), expectation(f, f, 0.0, v1, v2), 1e-3)
    assert k == pytest.approx(ref_k, rel=1e-12, abs=1e-12 * scale)
    dscale = max(abs(ref_kdot), 1e-3)
    assert kdot == pytest.approx(ref_kdot, rel=1e-12, abs=1e-12 * dscale)


@pytest.mark.parametrize("layer, f, df", CASES, ids=[repr(case[0]) for case in CASES])
@pytest.mark.parametrize("v", [0.3, 1.7])
def test_diagonal_and_perfect_correlation(layer, f, df, v):
    """At rho = +-1 the dual equals the 1-D expectation E[f(u) f(+-u)] (no NaN)."""
    x, w = np.polynomial.hermite_e.hermegauss(200)
    w = w / w.sum()
    u = np.sqrt(v) * x
    k_same, _ = _dual(layer, v, v, v)
    k_anti, _ = _dual(layer, -v, v, v)
    diag = float(layer.dual_diag(torch.tensor(v, dtype=torch.float64)))
    ref_same = np.sum(w * f(u) * f(u))
    ref_anti = np.sum(w * f(u) * f(-u))
    # 200-node Gauss-Hermite is exact for these polynomial-times-kink integrands up to the
    # kink at 0 (a node-symmetric rule), and converges to ~1e-10 for the smooth ones
    for value in (k_same, diag):
        assert value == pytest.approx(ref_same, rel=1e-8, abs=1e-10)
    assert k_anti == pytest.approx(ref_anti, rel=1e-8, abs=1e-10)


@pytest.mark.parametrize("layer, f, df", CASES, ids=[repr(case[0]) for case in CASES])
def test_zero_variance_gives_no_nan(layer, f, df):
    for c, v1, v2 in [(0.0, 0.0, 1.0), (0.0, 0.0, 0.0), (0.0, 1.0, 0.0)]:
        k, kdot = _dual(layer, c, v1, v2)
        assert math.isfinite(k) and math.isfinite(kdot)


def test_relu_family_alternative_closed_form():
    """effective_theory.md §2: <ss> = p^2 K12 + d^2 (2q/pi)(sqrt(1-rho^2) + rho arcsin rho)."""
    for a_minus, a_plus in [(0.0, 1.0), (0.2, 1.0), (-0.3, 0.9), (-1.0, 1.0)]:
        layer = wn.ABRelu(a_minus, a_plus)
        p, d = (a_plus + a_minus) / 2, (a_plus - a_minus) / 2
        for c, v1, v2 in POINTS:
            q = math.sqrt(v1 * v2)
            rho = c / q
            ref = p * p * c + d * d * (2 * q / math.pi) * (math.sqrt(1 - rho * rho)
                                                          + rho * math.asin(rho))
            s = 0.5 + math.asin(rho) / math.pi
            ref_dot = (a_plus**2 + a_minus**2) * s / 2 + a_plus * a_minus * (1 - s)
            k, kdot = _dual(layer, c, v1, v2)
            assert k == pytest.approx(ref, rel=1e-13, abs=1e-15)
            assert kdot == pytest.approx(ref_dot, rel=1e-13)


def test_erf_arcsine_formula():
    """Williams 1997: <erf erf> = (2/pi) arcsin(2 K12 / sqrt((1 + 2 K11)(1 + 2 K22)))."""
    for c, v1, v2 in POINTS:
        k, kdot = _dual(wn.Erf(), c, v1, v2)
        den = (1 + 2 * v1) * (1 + 2 * v2)
        assert k == pytest.approx(2 / math.pi * math.asin(2 * c / math.sqrt(den)), rel=1e-14)
        assert kdot == pytest.approx(4 / math.pi / math.sqrt(den - 4 * c * c), rel=1e-14)


def test_sin_closed_form():
    """<sin sin> = exp(-(K11 + K22)/2) sinh K12 and <cos cos> the same with cosh."""
    for c, v1, v2 in POINTS:
        k, kdot = _dual(wn.Sin(), c, v1, v2)
        assert k == pytest.approx(math.exp(-(v1 + v2) / 2) * math.sinh(c), rel=1e-14)
        assert kdot == pytest.approx(math.exp(-(v1 + v2) / 2) * math.cosh(c), rel=1e-14)


def test_rectified_monomial_degree_two_is_cho_saul():
    """Cho & Saul 2009: J_2 = 3 sin(t) cos(t) + (pi - t)(1 + 2 cos^2 t)."""
    for c, v1, v2 in POINTS:
        t = math.acos(c / math.sqrt(v1 * v2))
        ref = v1 * v2 * (3 * math.sin(t) * math.cos(t)
                         + (math.pi - t) * (1 + 2 * math.cos(t) ** 2)) / (2 * math.pi)
        assert _dual(wn.RectifiedMonomial(2), c, v1, v2)[0] == pytest.approx(ref, rel=1e-13)
