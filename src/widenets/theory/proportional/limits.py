"""Where the proportional theory is known to fail, and its Student-t link (spec §6, §8).

* The scalar kernel renormalisation rests on a central limit over the P training patterns for
  every hidden unit and on a large input dimension.  It is exact for linear networks; for
  nonlinear ones it is least reliable when the inputs span fewer dimensions than there are
  patterns (P > N0, or a numerically low-rank input Gram matrix).  Measured in spec §8 (1HL
  erf, P = 60, collapsed HMC of real networks): the order parameter and the training error
  stay within ~1 %, but at N0 = 40 < P the theory overestimates the shift of the test error
  from its infinite-width value by 30-60 %.  :func:`check_applicability` warns there.
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


def input_rank(x: torch.Tensor) -> int:
    """Numerical rank of the ``(P, N0)`` input matrix (numpy's ``matrix_rank`` tolerance)."""
    return int(np.linalg.matrix_rank(x.detach().cpu().numpy()))


def check_applicability(arch: BayesianMLP, x: torch.Tensor, stacklevel: int = 3) -> None:
    """Warn (:class:`WidenetsWarning`) where spec §8 says the theory is unreliable."""
    n_train, n_in = x.shape
    if arch.is_linear:
        return
    rank = input_rank(x) if n_in >= n_train else n_in
    if rank < n_train:
        warnings.warn(
            f"the inputs span {rank} dimensions (N0 = {n_in}) for P = {n_train} training "
            "points: with P > N0 the scalar kernel renormalisation is unreliable for nonlinear "
            "networks (spec §8 measured a 30-60% overestimate of the test-error shift from "
            "the infinite-width value at N0 = 40, P = 60); the order parameter and training "
            "error are less affected.", WidenetsWarning, stacklevel=stacklevel)
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
