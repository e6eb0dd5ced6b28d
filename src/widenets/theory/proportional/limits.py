"""Where the proportional theory is known to fail, and its Student-t link (spec §6, §8).

* The scalar kernel renormalisation rests on a central limit over the P training patterns for
  every hidden unit and on a large input dimension.  It is exact for linear networks; for
  nonlinear ones it is least reliable when the inputs span fewer dimensions than there are
  patterns (P > N0, or a numerically low-rank input Gram matrix).  Measured in spec §8 (1HL
  erf, P = 60, collapsed HMC of real networks): the order parameter and the training error
  stay within ~1 %, but at N0 = 40 < P the theory overestimates the shift of the test error
  from its infinite-width value by 30-60 %.  Real image data are worse: MNIST and CIFAR-10
  two-class inputs have an effective dimension of 5-8 whatever P, and on MNIST 0/1 at
  P = 100 the sampled erf networks' errors were 15-50 % below the theory.
  :func:`check_applicability` warns when the participation ratio of the input Gram
  eigenvalues is below P/2 (the spec's failing case has 0.41 P, its good ones 0.77 P and
  0.93 P) or the inputs are rank deficient.
* Deep non-homogeneous activations (erf, tanh, ...): the nested and product deep kernels
  disagree and no controlled theory exists; deep ReLU: the activation mean is ignored.
* Student-t processes (Shah, Wilson & Ghahramani 2014) share the hallmark of the 1HL posterior
  at T = 0, a GP mean and a GP variance rescaled by a data-dependent factor.  Their factor
  ``(nu + y^T K^{-1} y - 2) / (nu + P - 2)`` agrees with ``Qbar`` as ``alpha -> 0`` (to first
  order), as ``alpha -> inf`` and at ``r = 1``, but not in between (``alpha = 1, r = 4``:
  ``Qbar = 2`` against 2.5); the tests assert only those limits.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from widenets.errors import WidenetsWarning
from widenets.theory.proportional.architecture import BayesianMLP


def effective_dimension(x: torch.Tensor) -> tuple[int, float]:
    """``(rank, participation ratio)`` of the input Gram matrix ``X X^T`` (``P x P``).

    The participation ratio ``(sum e)^2 / sum e^2`` of its eigenvalues counts the input
    directions that carry the data's variance (about ``P N0 / (P + N0)`` for isotropic
    Gaussian inputs; 5-8 for the MNIST and CIFAR-10 two-class tasks at P = 100-500).
    """
    gram = x.detach().cpu().numpy()
    gram = gram @ gram.T
    e = np.clip(np.linalg.eigvalsh((gram + gram.T) / 2), 0.0, None)
    rank = int((e > e.max() * len(e) * np.finfo(np.float64).eps).sum())
    return rank, float(e.sum() ** 2 / (e**2).sum())


def check_applicability(arch: BayesianMLP, x: torch.Tensor, stacklevel: int = 3) -> None:
    """Warn (:class:`WidenetsWarning`) where spec §8 and our measurements say the theory is
    unreliable: nonlinear networks on inputs of effective dimension below ``P / 2``."""
    n_train, n_in = x.shape
    if arch.is_linear:
        return
    rank, ratio = effective_dimension(x)
    if rank < n_train or ratio < n_train / 2:
        warnings.warn(
            f"the {n_train} training inputs span {rank} dimensions (N0 = {n_in}) with an "
            f"effective dimension (participation ratio) of {ratio:.3g} < P/2: the scalar "
            "kernel renormalisation is unreliable for nonlinear networks on such "
            "low-dimensional data (spec §8: a 30-60% overestimate of the test-error shift at "
            "N0 = 40, P = 60; MNIST 0/1 at P = 100: test and training errors of sampled erf "
            "networks 15-50% below the theory).", WidenetsWarning, stacklevel=stacklevel)
    if arch.depth > 1 and not arch.is_homogeneous:
        warnings.warn(
            f"deep {type(arch.activation).__name__} networks: the nested and product kernel "
            "renormalisations disagree and neither is a controlled approximation (spec §4.3); "
            "the product form u K_GP is used.", WidenetsWarning, stacklevel=stacklevel)


def t_process_factor(nu: float, quadratic_form: float, n_train: int) -> float:
    """Variance factor of a Student-t process posterior, ``(nu + y^T K^{-1} y - 2) / (nu + P - 2)``.

    Shah, Wilson & Ghahramani, "Student-t processes as alternatives to Gaussian processes"
    (AISTATS 2014): the posterior of a TP(nu, 0, K) given P observations is a TP whose kernel
    is the GP posterior kernel times this factor (with ``nu + P`` degrees of freedom).
    """
    return (nu + quadratic_form - 2) / (nu + n_train - 2)
