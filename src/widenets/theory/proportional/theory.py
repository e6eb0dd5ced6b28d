"""The user-facing objects: a solved proportional theory and the exact deep-linear one."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from widenets.errors import HyperparameterError, ShapeError, expected
from widenets.theory.proportional import kernels
from widenets.theory.proportional.action import Spectrum
from widenets.theory.proportional.architecture import BayesianMLP
from widenets.theory.proportional.limits import t_process_factor
from widenets.theory.proportional.predictor import ErrorBreakdown
from widenets.validation import as_inputs


@dataclasses.dataclass(frozen=True)
class OrderParameters:
    """The saddle point of the effective action.

    Attributes
    ----------
    qbar : tuple of float
        ``Qbar_1 .. Qbar_L`` (the readout's last); for several outputs ``(Qbar,)`` with the
        ``D x D`` matrix.  The exact deep-linear theory reports posterior means instead.
    action : float
        ``S`` at the saddle point (spec §3.2; ``F / N_L`` for deep networks, §4.1).
    curvature : ndarray
        Hessian of ``S`` in the order parameters (``1 x 1`` for one hidden layer; for the
        mean-corrected ReLU action the 2 x 2 Hessian in ``(Qbar, 1/(1+Q))``).
    renormalisation : float
        ``u = prod_l Qbar_l``: the train kernel is ``u K_GP`` (trace/D for a matrix).
    readout : float
        Predicted posterior mean of ``lambda_L |v|^2 / (N_L D)``, the measurable order
        parameter of a sampled network.
    mean_scale : float or None
        ``1/(1+Q)``, the factor of the activation-mean part of the kernel (spec §3.6).
    r : float
        ``y^T K_GP^+ y / (P D)``: at T = 0 the finite network beats the infinite one iff r < 1.
    alphas : tuple of float
        ``P / N_l`` per hidden layer.
    """

    qbar: tuple
    action: float
    curvature: np.ndarray
    renormalisation: float
    readout: float
    mean_scale: float | None
    r: float
    alphas: tuple[float, ...]


@dataclasses.dataclass(frozen=True)
class Prediction:
    """Posterior mean and marginal variance of the network output at test points."""

    mean: torch.Tensor
    variance: torch.Tensor


class KernelTheory:
    """Shared machinery: inputs, the NNGP kernel, test kernels and the predictor protocol."""

    def __init__(self, arch: BayesianMLP, x_train: torch.Tensor, y_train: torch.Tensor,
                 temperature: float, kernel: np.ndarray | None = None):
        self.architecture = arch
        self.temperature = temperature
        self.x_train = x_train
        self.y_train = y_train
        self._squeeze = y_train.ndim == 1
        self._y = y_train.reshape(len(y_train), -1).numpy()
        self.kernel = kernels.nngp(arch, x_train) if kernel is None else kernel
        self.spectrum = Spectrum.of(self.kernel, self._y)

    # -- to be provided by subclasses ---------------------------------------------------
    order_parameters: OrderParameters

    def _moments(self, k0: np.ndarray, k00: np.ndarray, x: torch.Tensor):
        raise NotImplementedError

    def _train_error(self) -> ErrorBreakdown:
        raise NotImplementedError

    # -- public ---------------------------------------------------------------------------
    @property
    def network(self):
        """The widenets network whose initialisation is this theory's prior."""
        return self.architecture.network()

    def predict(self, x_test) -> Prediction:
        """Posterior mean and variance of the output at ``x_test`` (spec §3.4).

        Returns tensors of shape ``(n,)`` (or ``(n, D)`` when ``y_train`` was 2-D), float64.
        """
        x = self._inputs("x_test", x_test)
        mean, var = self._moments(*self._test_kernels(x), x)
        if self._squeeze:
            mean, var = mean[:, 0], var[:, 0]
        return Prediction(torch.as_tensor(mean), torch.as_tensor(var))

    def test_error(self, x_test, y_test) -> ErrorBreakdown:
        """Posterior-averaged squared error ``<(y - f(x))^2>`` = bias^2 + variance (spec §3.5),
        averaged over the test points and outputs (the sampler's ``test_mse``)."""
        x = self._inputs("x_test", x_test)
        y = self._labels("y_test", y_test, len(x))
        mean, var = self._moments(*self._test_kernels(x), x)
        return ErrorBreakdown(float(((y - mean) ** 2).mean()), float(var.mean()))

    def train_error(self) -> ErrorBreakdown:
        """Posterior-averaged squared error on the training set (spec §3.5), averaged over
        the training points and outputs."""
        return self._train_error()

    @property
    def r(self) -> float:
        """``y^T K_GP^+ y / (P D)`` (spec §3.3)."""
        return self.spectrum.r() / self._y.shape[1]

    def t_process_factor(self) -> float:
        """The Student-t process variance factor with ``nu = N_L`` degrees of freedom (spec §6),
        for comparison with ``Qbar`` at T = 0; see :mod:`.limits`."""
        n = len(self._y)
        return t_process_factor(self.architecture.widths[-1], self.r * n, n)

    # -- helpers --------------------------------------------------------------------------
    def _inputs(self, name: str, x) -> torch.Tensor:
        x = as_inputs(name, x, torch.float64)
        if x.shape[1:] != self.x_train.shape[1:]:
            trailing = ", ".join(map(str, self.x_train.shape[1:]))
            raise ShapeError(expected(name, f"of shape (n, {trailing}) to match `x_train`",
                                      tuple(x.shape)))
        return x.to(self.x_train.device)

    def _labels(self, name: str, y, n: int) -> np.ndarray:
        y = as_inputs(name, y, torch.float64, min_rank=1)
        y = y.reshape(len(y), -1).numpy()
        if y.shape != (n, self._y.shape[1]):
            raise ShapeError(expected(name, f"of shape ({n},) or ({n}, {self._y.shape[1]})",
                                      tuple(y.shape)))
        return y

    def _test_kernels(self, x: torch.Tensor):
        k0 = kernels.nngp(self.architecture, x, self.x_train)
        c = kernels.last_hidden_variances(self.architecture, x)
        phi = self.architecture.activation
        k00 = (c if phi is None else phi.dual_diag(torch.as_tensor(c)).numpy())
        return k0, k00 / self.architecture.priors[-1]


def validate(arch: BayesianMLP, x_train, y_train, temperature) -> tuple[torch.Tensor,
                                                                         torch.Tensor, float]:
    """Check the training data and temperature once, at the public boundary."""
    x = as_inputs("x_train", x_train, torch.float64)
    y = as_inputs("y_train", y_train, torch.float64, min_rank=1)
    if y.ndim > 2 or len(y) != len(x):
        raise ShapeError(expected("y_train", f"of shape ({len(x)},) or ({len(x)}, D)",
                                  tuple(y.shape)))
    n_out = 1 if y.ndim == 1 else y.shape[1]
    if n_out != arch.n_outputs:
        raise ShapeError(expected("y_train", f"{arch.n_outputs} output column(s) to match the "
                                  "network's readout", tuple(y.shape)))
    if isinstance(temperature, bool) or not isinstance(temperature, int | float) \
            or not math.isfinite(temperature) or temperature < 0:
        raise HyperparameterError(expected("temperature", "a finite number >= 0",
                                           repr(temperature)))
    arch.prepare_inputs(x)
    return x, y, float(temperature)
