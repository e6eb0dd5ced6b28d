"""The Student's t-process link (spec §6): what is checkable."""

import math

import numpy as np
import pytest
import torch

from widenets.theory.proportional.limits import t_process_factor


def qbar_zero_temperature(alpha, r):
    return 0.5 * ((1 - alpha) + math.sqrt((1 - alpha) ** 2 + 4 * alpha * r))


def test_t_process_factor_agrees_with_qbar_in_the_limits_only():
    n = 10_000  # large P so that the O(1/N_1) terms of the t factor are negligible
    for r in (0.3, 1.0, 4.0):
        # alpha -> 0: both are 1 + alpha (r - 1) + O(alpha^2)
        alpha = 1e-4
        t = t_process_factor(n / alpha, r * n, n)
        q = qbar_zero_temperature(alpha, r)
        assert abs(t - q) <= 2 * alpha**2 * max(1.0, r * r)
        # alpha -> infinity: both tend to r
        alpha = 1e4
        assert t_process_factor(n / alpha, r * n, n) == pytest.approx(r, rel=1e-3)
        assert qbar_zero_temperature(alpha, r) == pytest.approx(r, rel=1e-3)
    # r = 1: both are 1 (up to the t factor's O(1/P) offset)
    assert t_process_factor(n, n, n) == pytest.approx(1.0, abs=1e-12)
    # in between they differ: alpha = 1, r = 4 gives Qbar = 2 and a t factor of 2.5
    assert qbar_zero_temperature(1.0, 4.0) == pytest.approx(2.0, rel=1e-12)
    assert t_process_factor(n, 4 * n, n) == pytest.approx(2.5, rel=1e-3)


def test_linear_network_prior_has_the_student_t_characteristic_function():
    """For a 1HL linear network E[exp(i s f(x))] = (1 + s^2 K / N_1)^(-N_1/2), the Fourier
    form of a multivariate t density (spec §6); checked on 200k sampled networks of width 3,
    where the Gaussian exp(-s^2 K / 2) is rejected."""
    n0, width, lam0, lam1, n_nets = 5, 3, 2.0, 0.5, 200_000
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n0, generator=g, dtype=torch.float64)
    w = torch.randn(n_nets, width, n0, generator=g, dtype=torch.float64) / lam0**0.5
    v = torch.randn(n_nets, width, generator=g, dtype=torch.float64) / lam1**0.5
    f = ((w @ x) * v).sum(1) / math.sqrt(n0 * width)
    k = float(x @ x) / (n0 * lam0 * lam1)
    for s in (0.5, 1.0, 2.0):
        c = torch.cos(s * f).numpy()
        se = c.std() / math.sqrt(n_nets)
        t_form = (1 + s * s * k / width) ** (-width / 2)
        assert abs(c.mean() - t_form) < 4 * se  # Monte Carlo: 4 standard errors
        if s >= 1.0:
            assert abs(c.mean() - math.exp(-s * s * k / 2)) > 4 * se
    assert np.isfinite(k)
