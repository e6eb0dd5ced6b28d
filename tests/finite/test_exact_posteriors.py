"""The exact deep-linear posterior used by the Langevin tests, checked independently."""

import numpy as np

from tests.finite.exact_posteriors import deep_linear_importance, deep_linear_posterior
from tests.finite.test_langevin import _deep_linear_data


def test_quadrature_equals_importance_sampling_from_the_prior():
    x, y, x0 = _deep_linear_data()
    exact = deep_linear_posterior(x, y, x0, [3, 4], 0.1)
    sampled, se = deep_linear_importance(x, y, x0, [3, 4], 0.1)
    for key in ("mean", "second_moment", "readout_order"):
        # within 4 of the importance sampler's own standard errors (7 comparisons)
        z = (np.asarray(sampled[key]) - exact[key]) / se[key]
        assert np.abs(z).max() < 4, (key, z)
        assert np.all(se[key] < 0.05 * np.abs(exact[key]) + 1e-3)  # the check has power
