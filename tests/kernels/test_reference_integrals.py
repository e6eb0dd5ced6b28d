"""The test-only reference integrator is itself right on closed-form Gaussian moments."""

import numpy as np
import pytest

from tests.reference_integrals import expectation


@pytest.mark.parametrize("c, v1, v2", [(0.3, 1.0, 2.0), (-1.2, 1.5, 1.1), (0.0, 0.7, 0.4)])
def test_gaussian_moments(c, v1, v2):
    # Isserlis: E[uv] = c, E[u^2 v^2] = v1 v2 + 2 c^2, E[u^3 v] = 3 v1 c
    assert expectation(lambda u: u, lambda v: v, c, v1, v2) == pytest.approx(c, abs=1e-14)
    assert expectation(lambda u: u**2, lambda v: v**2, c, v1, v2) == pytest.approx(
        v1 * v2 + 2 * c * c, rel=1e-13)
    assert expectation(lambda u: u**3, lambda v: v, c, v1, v2) == pytest.approx(
        3 * v1 * c, abs=1e-13)
    # a kinked one: P(u > 0, v > 0) = 1/4 + arcsin(rho) / (2 pi)
    rho = c / np.sqrt(v1 * v2)
    both = expectation(lambda u: (u > 0) * 1.0, lambda v: (v > 0) * 1.0, c, v1, v2)
    assert both == pytest.approx(0.25 + np.arcsin(rho) / (2 * np.pi), abs=1e-14)
