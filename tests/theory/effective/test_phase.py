"""Fixed points, correlation depths and the phase diagram against direct iteration."""

import math

import numpy as np
import pytest

import widenets as wn
from widenets.theory.effective import single
from widenets.theory.effective.activations import ActivationInfo
from widenets.theory.effective.phase import fixed_point, phase_diagram


def _iterate(act, cb, cw, depth, q=1.0):
    info = ActivationInfo(act)
    k = [cb + cw * q]
    for _ in range(depth):
        k.append(cb + cw * single.moments(info, k[-1], rtol=1e-12)["s2"])
    return np.array(k)


@pytest.mark.parametrize("act, cb, cw", [(wn.Tanh(), 0.1, 1.0), (wn.Tanh(), 0.05, 1.8),
                                         (wn.Erf(), 0.2, 1.2)], ids=str)
def test_fixed_point_and_correlation_depth_match_iteration(act, cb, cw):
    fp = fixed_point(act, cb, cw)
    k = _iterate(act, cb, cw, 60)
    assert k[-1] == pytest.approx(fp.fixed_point, rel=1e-9)
    # the distance to K* shrinks by chi_par per layer: exp(-l / xi_par)
    ratio = (k[21] - fp.fixed_point) / (k[20] - fp.fixed_point)
    assert ratio == pytest.approx(fp.chi_parallel, rel=1e-3)
    assert fp.depth_parallel == pytest.approx(-1 / math.log(fp.chi_parallel))
    assert fp.phase == ("chaotic" if fp.chi_perpendicular > 1 else "ordered")


def test_phases_of_tanh_and_relu():
    assert fixed_point(wn.Tanh(), 0.0, 1.0).phase == "critical"
    assert fixed_point(wn.Tanh(), 0.0, 0.8).fixed_point == 0.0
    assert fixed_point(wn.Relu(), 0.1, 2.1).fixed_point == math.inf
    relu = fixed_point(wn.Relu(), 0.1, 1.9)
    assert relu.fixed_point == pytest.approx(0.1 / (1 - 0.95))
    assert relu.chi_parallel == pytest.approx(0.95) == relu.chi_perpendicular


def test_phase_diagram_agrees_with_fixed_point():
    bias, weight = np.array([0.0, 0.1, 0.3]), np.array([0.7, 1.0, 1.6, 2.2])
    pd = phase_diagram(wn.Tanh(), bias, weight)
    assert pd.chi_perpendicular.shape == (4, 3)
    for i, cw in enumerate(weight):
        for j, cb in enumerate(bias):
            fp = fixed_point(wn.Tanh(), cb, cw)
            # spline interpolation of the tabulated moments: ~1e-6 relative
            assert pd.chi_perpendicular[i, j] == pytest.approx(fp.chi_perpendicular, rel=1e-5,
                                                               abs=1e-7)
            assert pd.chi_parallel[i, j] == pytest.approx(fp.chi_parallel, rel=1e-5, abs=1e-7)
