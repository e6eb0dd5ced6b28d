"""The proportional-limit theory of Bayesian deep networks (Pacelli et al. 2023).

A Bayesian fully connected network of *finite* width ``N`` trained on ``P ~ N`` examples
behaves as a Gaussian process whose NNGP kernel is renormalised by data-dependent order
parameters ``Qbar_l``, found at the saddle point of an effective action::

    import widenets as wn
    th = wn.theory.proportional(net, x_train, y_train, widths=[500], temperature=1e-3,
                                priors=[1.0, 1.0])
    th.order_parameters.qbar          # (Qbar_1,): also .action, .curvature, .readout, .r
    th.predict(x_test)                # mean and variance: a GP with kernel Qbar K_GP
    th.test_error(x_test, y_test)     # bias^2 + variance, posterior averaged
    th.train_error()
    th.infinite_width()               # the NNGP posterior, for comparison

What is covered: one hidden layer (:mod:`.action`), ReLU-like activations with a mean
(:mod:`.mean_corrected`, two order parameters), several outputs (:mod:`.multi_output`, a
matrix order parameter), deep networks (:mod:`.deep`, one order parameter per layer, product
renormalisation of the depth-L kernel), the exact finite-width posterior of deep *linear*
networks (:func:`exact_deep_linear`, :mod:`.linear`), the Student-t link (:mod:`.limits`), the
seed paper's learning curve (:mod:`.learning_curve`, :mod:`.figures`, ``widenets
learning-curve``).  ``priors`` are *precisions* of the effective weights (spec §1): a widenets
``Dense(n, weight_std=1/sqrt(lambda), bias_std=None)`` draws exactly that prior.

Where the theory fails (measured against networks sampled by ``widenets.finite.langevin``):

* Low-dimensional inputs.  The derivation needs a central limit over the P patterns for every
  hidden unit; on isotropic inputs with N0 = 2P (effective dimension 0.67 P) test error,
  training error and order parameter agree with sampled erf/ReLU networks within 4 standard
  errors at N1 >= 100, but MNIST 0/1 and CIFAR-10 inputs have an effective dimension of 5-8
  whatever P, and there sampled erf networks have test and training errors 15-60 % *below*
  the theory at N1 <= 100 (5 % at N1 = 400).  :func:`proportional` warns
  (:class:`~widenets.WidenetsWarning`) when the participation ratio of the input Gram
  eigenvalues is below P/2 or the inputs are rank deficient.
* Small widths.  The saddle point is exact only as N -> infinity at fixed alpha = P/N; the
  readout order parameter of sampled networks exceeds it by about c/N1 (c ~ 3 in our erf
  runs; for linear networks the gap to the exact posterior is -0.45/N at alpha = 1/2).
* Deep non-homogeneous activations (erf, tanh): no controlled theory (warns); deep ReLU
  ignores the activation mean (warns).  Measured on 2-hidden-layer ReLU nets (P = 100,
  N1 = N2 = 50, 100, 200): the test error agrees within 2 standard errors, but the readout order
  parameter of the sampled nets is 5-10 % below the theory and the training error 3-9 % below
  it (the deep *linear* control agrees within 1.5 standard errors).
* Temperature: "the finite net beats the infinite one iff r < 1" is a T = 0 statement.  At
  T > 0 with a readout prior so large that the kernel scale 1/lambda_1 is comparable to T,
  it fails (MNIST 0/1, T = 1e-3, lambda_1 = 100-1000), and so can "a larger lambda_1 lowers
  the test error".
* P of order N0 N1 (extensive width) is beyond the proportional regime.

This package module is itself callable (``wn.theory.proportional(...)`` is
:func:`proportional`) so that its submodules stay importable under the same name.
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
