"""Samples of a finite network's posterior and what is measured on them."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import torch

from widenets.errors import HyperparameterError, expected
from widenets.finite import diagnostics

Tensor = torch.Tensor
SCALARS = ("train_mse", "test_mse", "order_parameter", "energy")


@dataclass
class PosteriorSamples:
    """Draws from the posterior of a finite network (see ``sample_posterior``).

    Draws are ordered chain by chain: sample ``s`` comes from chain ``s // n_draws``.  Use
    :meth:`by_chain` to get ``(n_chains, n_draws, ...)`` arrays.

    Attributes
    ----------
    train_predictions : Tensor, ``(n_samples, n_train, n_outputs)``
        Network outputs on the training inputs.
    test_predictions : Tensor ``(n_samples, n_test, n_outputs)`` or None
    train_mse, test_mse : Tensor ``(n_samples,)``
        ``mean_{mu, a} (y^mu_a - f_a(x^mu))^2`` per draw (``test_mse`` needs ``y_test``; else
        None).  Their posterior means are the posterior-averaged errors of proportional.md §3.5
        (bias^2 + variance), not the error of the posterior-mean predictor.
    readout_order : Tensor ``(n_samples, k, k)``
        ``Qbar_ab = lambda_L sum_i v_ai v_bi / N_L``: ``v`` the effective readout weights
        (the network written as ``f_a = N_L^-1/2 sum_i v_ai phi_i``), ``lambda_L`` their prior
        precision, ``N_L`` the readout fan-in.  Its posterior mean is the order parameter
        ``Qbar`` of Pacelli et al. 2023 (proportional.md §3.4, §7.2); 1 under the prior.
    order_parameter : Tensor ``(n_samples,)``
        ``trace(readout_order) / k``.
    layer_order : Tensor ``(n_samples, L)``
        ``lambda_l |w_l|^2 / (number of weights)`` per affine layer (1 on average under the
        prior; proportional.md §8's check that the prior acts on every layer).
    energy : Tensor ``(n_samples,)``
        The sampled potential ``Loss / T + |z|^2 / 2`` (+ log-det term when repriorised).
    steps : Tensor ``(n_samples,)``, int64
        Step index (1-based, burn-in included) at which each draw was taken.
    n_chains : int
    acceptance_rate : float
        Fraction of accepted proposals after burn-in (MALA); for ULA, which accepts every
        step, the mean Metropolis acceptance probability the step *would* have had: a
        measure of its discretisation error (1 means none).
    step_size : float
    ess, rhat : dict of str to float
        ArviZ bulk effective sample size and R-hat of ``train_mse``, ``test_mse``,
        ``order_parameter`` and ``energy``, and the minimum and median over (at most 100)
        test predictions (``test_prediction_min``, ``test_prediction_median``).
    seconds : float
        Wall time spent sampling (summed over resumed runs).
    n_gradients : int
        Gradient evaluations per chain.
    settings : dict
        The configuration of the run.
    """

    train_predictions: Tensor
    test_predictions: Tensor | None
    train_mse: Tensor
    test_mse: Tensor | None
    readout_order: Tensor
    layer_order: Tensor
    energy: Tensor
    steps: Tensor
    n_chains: int
    acceptance_rate: float
    step_size: float
    seconds: float
    n_gradients: int
    settings: dict = field(default_factory=dict)
    ess: dict = field(default_factory=dict)
    rhat: dict = field(default_factory=dict)

    def __post_init__(self):
        if not self.ess:
            self.ess, self.rhat = self._diagnostics()

    @property
    def n_samples(self) -> int:
        return len(self.train_mse)

    @property
    def n_draws(self) -> int:
        return self.n_samples // self.n_chains

    @property
    def order_parameter(self) -> Tensor:
        return self.readout_order.diagonal(dim1=1, dim2=2).mean(1)

    def by_chain(self, values: Tensor | str) -> np.ndarray:
        """``(n_chains, n_draws, ...)`` numpy view of an attribute (name or tensor)."""
        values = getattr(self, values) if isinstance(values, str) else values
        if values is None:
            raise HyperparameterError(expected("values", "a recorded quantity", None))
        arr = values.detach().cpu().numpy()
        return arr.reshape(self.n_chains, self.n_draws, *arr.shape[1:])

    def mean(self, name: str) -> Tensor:
        """Posterior mean of an attribute (over all draws of all chains)."""
        return getattr(self, name).mean(0)

    def variance(self, name: str) -> Tensor:
        """Posterior variance of an attribute (e.g. ``Var f(x0)`` from ``test_predictions``)."""
        return getattr(self, name).var(0)

    def mcse(self, name: str) -> Tensor:
        """Monte Carlo standard error of :meth:`mean`, elementwise (ArviZ, autocorrelation-
        and chain-aware)."""
        return torch.as_tensor(diagnostics.elementwise(diagnostics.mcse, self.by_chain(name)))

    def _diagnostics(self) -> tuple[dict, dict]:
        ess, rhat = {}, {}
        for name in SCALARS:
            if getattr(self, name) is None or self.n_draws < 4:
                continue
            draws = self.by_chain(name)
            ess[name], rhat[name] = diagnostics.ess(draws), diagnostics.rhat(draws)
        if self.test_predictions is not None and self.n_draws >= 4:
            draws = self.by_chain("test_predictions")
            draws = draws.reshape(*draws.shape[:2], -1)[:, :, :100]
            values = np.array([diagnostics.ess(draws[:, :, i]) for i in range(draws.shape[2])])
            if np.isfinite(values).any():
                ess["test_prediction_min"] = float(np.nanmin(values))
                ess["test_prediction_median"] = float(np.nanmedian(values))
        return ess, rhat

    def summary(self) -> dict:
        """Posterior means with their Monte Carlo standard errors, and the diagnostics."""
        out = {}
        for name in ("train_mse", "test_mse", "order_parameter"):
            if getattr(self, name) is not None:
                out[name] = (float(self.mean(name)), float(self.mcse(name)))
        out.update(acceptance_rate=self.acceptance_rate, step_size=self.step_size,
                   n_samples=self.n_samples, n_chains=self.n_chains, seconds=self.seconds,
                   ess=dict(self.ess), rhat=dict(self.rhat))
        return out

    def to_dict(self) -> dict:
        """Tensors and numbers (for ``torch.save``); :meth:`from_dict` rebuilds."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: dict) -> PosteriorSamples:
        return cls(**data)
