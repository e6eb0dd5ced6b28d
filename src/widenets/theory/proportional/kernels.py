"""The infinite-width (NNGP) kernels the theory renormalises (spec §2).

Spec §2 writes the recursion with precisions::

    C_1 = x . x' / (lambda_0 N0),   C_{l+1} = kappa(C_l) / lambda_l,   K_GP = kappa(C_L) / lambda_L

and widenets' kernel engine computes the same thing for the network of
:meth:`BayesianMLP.network`: ``Dense(n, weight_std=1/sqrt(lambda))`` maps the mean-over-features
kernel ``K`` to ``K / lambda`` and an activation maps ``K`` to ``kappa(K)``.  The theory uses
the engine (:func:`nngp`), which covers every activation with a dual kernel;
:func:`nngp_spec` is an independent transcription of spec §2 for erf, ReLU and linear
networks that the tests hold the engine to.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch

from widenets.errors import WidenetsWarning
from widenets.kernels.gaussian import clip_covariance
from widenets.layers import Erf, Identity
from widenets.layers.relu import ABRelu, Abs, LeakyRelu, Relu
from widenets.theory.proportional.architecture import BayesianMLP


def nngp(arch: BayesianMLP, x1: torch.Tensor, x2: torch.Tensor | None = None) -> np.ndarray:
    """``K_GP(x1, x2)`` of one output unit (float64 numpy array, ``(n1, n2)``)."""
    k = arch.network().kernel(x1, x2, get="nngp", dtype=torch.float64).nngp
    return k.detach().cpu().numpy()


def last_hidden_variances(arch: BayesianMLP, x: torch.Tensor) -> np.ndarray:
    """``C_L(x, x)``: the prior variance of a last-hidden-layer pre-activation, per input."""
    x = arch.prepare_inputs(x).to(torch.float64)
    c = (x * x).sum(1) / (arch.priors[0] * x.shape[1])
    phi = arch.activation or Identity()
    for lam in arch.priors[1:-1]:
        c = phi.dual_diag(c) / lam
    return c.cpu().numpy()


def activation_mean(phi, c: np.ndarray) -> np.ndarray:
    """``m(c) = E[phi(a)]`` for ``a ~ N(0, c)`` (spec §2): closed forms, else quadrature.

    ``a min(u,0) + b max(u,0)`` has mean ``(b - a) sqrt(c / 2 pi)``; ``a erf(b u) + c0`` has
    mean ``c0``; the identity has mean 0.  Anything else is integrated with 96-point
    Gauss-Hermite quadrature, with a :class:`WidenetsWarning`.
    """
    c = np.asarray(c, dtype=np.float64)
    slope = {Relu: (0.0, 1.0), Abs: (-1.0, 1.0)}.get(type(phi))
    if isinstance(phi, LeakyRelu):
        slope = (phi.alpha, 1.0)
    elif isinstance(phi, ABRelu):
        slope = (phi.a, phi.b)
    if slope is not None:
        return (slope[1] - slope[0]) * np.sqrt(c / (2 * math.pi))
    if phi is None or isinstance(phi, Identity):
        return np.zeros_like(c)
    if isinstance(phi, Erf):
        return np.full_like(c, phi.c)
    warnings.warn(f"the mean of {type(phi).__name__} is computed by Gauss-Hermite quadrature "
                  "(96 nodes)", WidenetsWarning, stacklevel=3)
    nodes, weights = np.polynomial.hermite_e.hermegauss(96)
    values = phi.function(torch.as_tensor(np.sqrt(c)[:, None] * nodes[None, :]))
    return values.numpy() @ weights / math.sqrt(2 * math.pi)


def renormalised_recursion(arch: BayesianMLP, x1: torch.Tensor, x2: torch.Tensor | None,
                           scales) -> np.ndarray:
    """The nested kernel of spec §4.3: ``K_l = Qbar_l kappa(K_{l-1}) / lambda_l``, ``K_0 = C_1``.

    With all ``scales`` equal to one this is ``K_GP``; for a homogeneous activation it equals
    ``prod(scales) K_GP``.  Uses the engine's dual kernels on the full matrices.
    """
    x1 = arch.prepare_inputs(x1).to(torch.float64)
    x2 = x1 if x2 is None else arch.prepare_inputs(x2).to(torch.float64)
    n0 = x1.shape[1]
    lam0 = arch.priors[0]
    k12 = x1 @ x2.T / (lam0 * n0)
    v1, v2 = (x1 * x1).sum(1) / (lam0 * n0), (x2 * x2).sum(1) / (lam0 * n0)
    phi = arch.activation or Identity()
    for scale, lam in zip(scales, arch.priors[1:], strict=True):
        c = clip_covariance(k12, v1[:, None], v2[None, :])
        k12 = scale * phi.dual(c, v1[:, None], v2[None, :], False)[0] / lam
        v1, v2 = scale * phi.dual_diag(v1) / lam, scale * phi.dual_diag(v2) / lam
    return k12.numpy()


def nngp_spec(x1: np.ndarray, x2: np.ndarray | None, activation: str,
              priors) -> np.ndarray:
    """Spec §2 transcribed literally (erf, relu, linear), for tests of :func:`nngp`."""
    x1 = np.asarray(x1, dtype=np.float64)
    x2 = x1 if x2 is None else np.asarray(x2, dtype=np.float64)
    n0 = x1.shape[1]
    cxy = x1 @ x2.T / (priors[0] * n0)
    cxx = (x1 * x1).sum(1)[:, None] / (priors[0] * n0)
    cyy = (x2 * x2).sum(1)[None, :] / (priors[0] * n0)
    for lam in priors[1:]:
        cxy = _kappa(activation, cxx, cxy, cyy) / lam
        cxx = _kappa(activation, cxx, cxx, cxx) / lam
        cyy = _kappa(activation, cyy, cyy, cyy) / lam
    return cxy


def _kappa(activation: str, cxx, cxy, cyy):
    if activation == "erf":
        return 2 / np.pi * np.arcsin(2 * cxy / np.sqrt((1 + 2 * cxx) * (1 + 2 * cyy)))
    if activation == "relu":
        u = np.clip(cxy / np.sqrt(cxx * cyy), -1.0, 1.0)
        return np.sqrt(cxx * cyy) * (u * (np.pi - np.arccos(u)) + np.sqrt(1 - u * u)) / (
            2 * np.pi)
    if activation == "linear":
        return cxy
    raise ValueError(activation)
