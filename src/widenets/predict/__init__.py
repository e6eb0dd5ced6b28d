"""Exact predictions of infinitely wide networks (kernels.md, "Exact predictions").

* :func:`gradient_flow`: mean and covariance after training time ``t`` (NNGP or NTK);
* :func:`gp_posterior`, :func:`log_marginal_likelihood`: the Bayesian NNGP posterior with
  observation noise, and its evidence;
* :func:`classify`: classification by regression on centred one-hot targets (Arora et al.
  2019).

Each has a ``*_from_kernels`` twin that takes precomputed kernel matrices;
:func:`train_test_kernels` computes them in row blocks with progress reports.  This package only
calls ``net.kernel``; it imports no layer.
"""

from widenets.predict.classification import accuracy, classify, classify_from_kernels, one_hot
from widenets.predict.gp import (
    Posterior,
    gp_posterior,
    gp_posterior_from_kernels,
    log_marginal_likelihood,
    log_marginal_likelihood_from_kernel,
)
from widenets.predict.gradient_flow import (
    Prediction,
    gradient_flow,
    gradient_flow_from_kernels,
)
from widenets.predict.kernels import pair_count, train_test_kernels

__all__ = [
    "Posterior", "Prediction", "accuracy", "classify", "classify_from_kernels",
    "gp_posterior", "gp_posterior_from_kernels", "gradient_flow", "gradient_flow_from_kernels",
    "log_marginal_likelihood", "log_marginal_likelihood_from_kernel", "one_hot", "pair_count",
    "train_test_kernels",
]
