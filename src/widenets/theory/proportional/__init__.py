"""The proportional-limit theory of Bayesian deep networks (Pacelli et al. 2023).

A Bayesian fully connected network of *finite* width ``N`` trained on ``P ~ N`` examples
behaves as a Gaussian process whose NNGP kernel is renormalised by data-dependent order
parameters ``Qbar_l``, found at the saddle point of an effective action::

    import widenets as wn
    th = wn.theory.proportional(net, x_train, y_train, widths=[500], temperature=1e-3,
                                priors=[1.0, 1.0])
    th.order_parameters.qbar          # (Qbar_1,)
    th.predict(x_test)                # mean and variance: a GP with kernel Qbar K_GP
    th.test_error(x_test, y_test)     # bias^2 + variance, posterior averaged
    th.train_error()

This package module is itself callable (``wn.theory.proportional(...)`` is
:func:`proportional`) so that its submodules stay importable under the same name.

Where the theory is known to fail (nonlinear networks with more training points than input
dimensions, deep non-homogeneous activations) it warns; see :mod:`.limits`.
"""

from __future__ import annotations

import sys
import types

from widenets.theory.proportional.architecture import BayesianMLP, parse_network
from widenets.theory.proportional.model import (
    ExactDeepLinear,
    ProportionalTheory,
    exact_deep_linear,
    proportional,
)
from widenets.theory.proportional.predictor import ErrorBreakdown
from widenets.theory.proportional.theory import OrderParameters, Prediction

__all__ = [
    "BayesianMLP", "ErrorBreakdown", "ExactDeepLinear", "OrderParameters", "Prediction",
    "ProportionalTheory", "exact_deep_linear", "parse_network", "proportional",
]


class _CallableModule(types.ModuleType):
    """``widenets.theory.proportional(...)`` calls :func:`proportional`."""

    def __call__(self, *args, **kwargs) -> ProportionalTheory:
        return proportional(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
