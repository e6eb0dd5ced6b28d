"""NNGP and NTK estimated from sampled finite networks, with standard errors.

For ``S`` networks drawn independently from the initialisation distribution
(``net.module(seed=s_i, widths=...)``):

* NNGP: per network, ``f(x1) f(x2)^T`` averaged over the k output units (unbiased for the
  output covariance ``E[f_a(x) f_a(x')]``).  When the readout is a dense layer the readout's
  weights are averaged out in closed form instead (Rao–Blackwellisation: ``W_std^2 h.h' /
  fan_in + b_std^2`` in either parameterisation), which has the same mean and a smaller
  variance.
* NTK: the empirical NTK (:func:`widenets.finite.empirical.empirical_ntk`, traced over outputs).

The estimate is the mean over networks; its standard error is the standard deviation over
networks divided by ``sqrt(S)`` (networks are independent, so no autocorrelation).  As the
width grows both converge to the analytic kernels of ``net.kernel`` (Neal 1996; Lee et al.
2018; Jacot et al. 2018), with fluctuations of order ``width^-1/2``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from widenets.errors import HyperparameterError, ShapeError, expected
from widenets.finite.empirical import check_accepts, empirical_ntk
from widenets.finite.modules import Affine
from widenets.layers.base import Layer
from widenets.validation import as_inputs

Tensor = torch.Tensor
GETS = ("nngp", "ntk")


@dataclass
class MonteCarloKernel:
    """Kernels estimated from sampled networks, each ``(n1, n2)`` float64, or None if not
    requested.

    Attributes
    ----------
    nngp, ntk : Tensor or None
        Means over the sampled networks.
    nngp_se, ntk_se : Tensor or None
        Their standard errors (standard deviation over networks / sqrt(n_samples)).
    n_samples : int
    nngp_estimator : str
        "readout-integrated" (Rao–Blackwellised over a dense readout) or "outputs".
    """

    nngp: Tensor | None
    ntk: Tensor | None
    nngp_se: Tensor | None
    ntk_se: Tensor | None
    n_samples: int
    nngp_estimator: str


def _seeds(seed: int, n: int) -> list[int]:
    state = np.random.SeedSequence(seed).generate_state(n, np.uint64)
    return [int(s >> np.uint64(1)) for s in state]


def _nngp(model: torch.nn.Module, x1: Tensor, x2: Tensor) -> tuple[Tensor, str]:
    readout = model[-1] if isinstance(model, torch.nn.Sequential) else None
    with torch.no_grad():
        if isinstance(readout, Affine) and not readout.kernel_size:
            body = model[:-1]
            h1 = body(x1)
            h2 = h1 if x2 is x1 else body(x2)
            if h1.ndim == 2:  # both parameterisations: E[w^2] = W_std^2/fan_in, E[b^2] = b_std^2
                w2 = readout.weight_std**2 / h1.shape[1]
                b2 = (readout.bias_std or 0.0) ** 2 if readout.bias is not None else 0.0
                return w2 * h1 @ h2.T + b2, "readout-integrated"
        f1 = model(x1)
        f2 = f1 if x2 is x1 else model(x2)
    return f1 @ f2.T / f1.shape[1], "outputs"


def _build(net, seed: int, widths, x1: Tensor) -> torch.nn.Module:
    """The first sampled network, with inputs it cannot take reported as the caller's x1."""
    try:
        model = net.module(seed=seed, widths=widths, in_shape=x1.shape[1:])
    except (RuntimeError, ShapeError) as err:
        raise ShapeError(expected("x1", "inputs the architecture accepts",
                                  f"shape {tuple(x1.shape)}: {err}")) from err
    check_accepts(model, x1)
    return model


def monte_carlo_kernel(net, x1, x2=None, *, n_samples: int, widths=None, seed: int = 0,
                       get: str | Sequence[str] = GETS, implementation: str = "auto",
                       batch_size: int = 64) -> MonteCarloKernel:
    """NNGP and NTK of a finite-width architecture, estimated from sampled networks.

    Parameters
    ----------
    net : widenets Layer
        The architecture (``net.kernel`` gives the infinite-width limit of the estimates).
    x1 : Tensor or array ``(n1, ...)``; x2 : optional ``(n2, ...)`` (None: ``x1``)
    n_samples : int
        Networks drawn, at least 2 (for a standard error).
    widths : int or sequence of int, optional
        Hidden widths of the sampled networks (``net.module(widths=...)``).
    seed : int
        Network ``i`` is ``net.module(seed=s_i)`` with ``s_i`` derived from ``seed``.
    get : "nngp", "ntk" or both
    implementation : str
        Of the empirical NTK (see :func:`~widenets.finite.empirical.empirical_ntk`).
    batch_size : int
        Inputs per block of the empirical NTK.

    Returns
    -------
    MonteCarloKernel

    Examples
    --------
    >>> import torch, widenets as wn
    >>> net = wn.serial(wn.Dense(1, 1.5, 0.1), wn.Relu(), wn.Dense(1))
    >>> mc = wn.monte_carlo_kernel(net, torch.randn(4, 3), n_samples=50, widths=256)
    >>> mc.ntk.shape, mc.ntk_se.shape                       # doctest: +SKIP
    (torch.Size([4, 4]), torch.Size([4, 4]))
    """
    if not isinstance(net, Layer):
        hint = (" (the architecture, e.g. wn.serial(...), not a built module)"
                if isinstance(net, torch.nn.Module) else "")
        raise HyperparameterError(expected("net", f"a widenets Layer{hint}",
                                           type(net).__name__))
    get = (get,) if isinstance(get, str) else tuple(get)
    for g in get:
        if g not in GETS:
            raise HyperparameterError(expected("get", f"a subset of {GETS}", repr(get)))
    if isinstance(n_samples, bool) or not isinstance(n_samples, int | np.integer) \
            or n_samples < 2:
        raise HyperparameterError(expected("n_samples", "an int >= 2", repr(n_samples)))
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise HyperparameterError(expected("seed", "an int", repr(seed)))
    x1 = as_inputs("x1", x1, torch.float64)
    x2_t = x1 if x2 is None else as_inputs("x2", x2, torch.float64, like=x1)
    nngp, ntk, estimator = [], [], "outputs"
    for s in _seeds(int(seed), int(n_samples)):
        model = _build(net, s, widths, x1) if not nngp and not ntk else \
            net.module(seed=s, widths=widths, in_shape=x1.shape[1:])
        if "nngp" in get:
            value, estimator = _nngp(model, x1, x2_t)
            nngp.append(value)
        if "ntk" in get:
            ntk.append(empirical_ntk(model, x1, x2, implementation=implementation,
                                     batch_size=batch_size))

    def stats(values):
        if not values:
            return None, None
        stacked = torch.stack(values)
        return stacked.mean(0), stacked.std(0) / len(values) ** 0.5

    (k, k_se), (t, t_se) = stats(nngp), stats(ntk)
    return MonteCarloKernel(nngp=k, ntk=t, nngp_se=k_se, ntk_se=t_se,
                            n_samples=int(n_samples), nngp_estimator=estimator)
