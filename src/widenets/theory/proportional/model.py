"""``proportional(net, x, y, ...)`` solves the theory; ``exact_deep_linear`` is its reference."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from widenets.errors import HyperparameterError, WidenetsWarning, expected
from widenets.theory.proportional import action as one_layer
from widenets.theory.proportional import deep, kernels, linear, mean_corrected, multi_output
from widenets.theory.proportional.architecture import BayesianMLP, parse_network
from widenets.theory.proportional.limits import check_applicability
from widenets.theory.proportional.predictor import ErrorBreakdown, RenormalisedGP
from widenets.theory.proportional.theory import KernelTheory, OrderParameters, validate


class ProportionalTheory(KernelTheory):
    """A finite-width Bayesian network in the proportional limit: a GP with the renormalised
    kernel ``K_R`` at the saddle point of the effective action.  Made by :func:`proportional`.

    Attributes
    ----------
    order_parameters : OrderParameters
    kernel : ndarray (P, P)
        The infinite-width NNGP kernel ``K_GP`` on the training inputs.
    renormalised_kernel : ndarray (P, P)
        ``K_R`` on the training inputs (``Qbar K_GP`` for one output and zero-mean
        activations).
    """

    def __init__(self, arch: BayesianMLP, x, y, temperature: float, *,
                 mean_correction: bool | None, kernel: np.ndarray | None = None,
                 fixed_qbar: float | None = None):
        super().__init__(arch, x, y, temperature, kernel)
        self._mean_split = None
        if fixed_qbar is not None:  # the infinite-width GP (Qbar = 1): see infinite_width()
            self._finish((fixed_qbar,) * arch.depth, np.nan, np.full((1, 1), np.nan))
        elif self._y.shape[1] > 1:
            self._solve_multi_output()
        elif arch.depth > 1:
            _warn_zero_mean(arch, self.x_train, "deep networks")
            saddle = deep.solve_deep(self.spectrum, arch.widths, temperature)
            self._finish(saddle.qbar, saddle.action, saddle.curvature)
        else:
            self._solve_one_layer(mean_correction)

    # -- solvers --------------------------------------------------------------------------
    def _solve_one_layer(self, mean_correction: bool | None) -> None:
        arch, width, t = self.architecture, self.architecture.widths[0], self.temperature
        saddle = (one_layer.solve_one_hidden_layer(self.spectrum, width, t) if t > 0
                  else one_layer.solve_zero_temperature(self.spectrum, width))
        means = kernels.activation_mean(arch.activation,
                                        kernels.last_hidden_variances(arch, self.x_train))
        if mean_correction is None:
            mean_correction = bool(np.any(means != 0))
        if not mean_correction or not np.any(means != 0):
            self._finish(saddle.qbar, saddle.action, saddle.curvature)
            return
        split = mean_corrected.MeanSplit.of(self.kernel, means, arch.priors[-1], self._y[:, 0])
        if t == 0 and split.values.min() <= self.spectrum.rank_tol:
            raise HyperparameterError(expected(
                "temperature", "> 0 for the mean-corrected action on a singular kernel (or "
                "pass mean_correction=False for the rank-aware T = 0 closed form)", t))
        a, b = mean_corrected.solve(split, width, t, saddle.qbar[0])
        self._mean_split = (means, a, b)
        kr = mean_corrected.renormalised(self.kernel, means, means, arch.priors[-1], a, b)
        self._finish((a,), mean_corrected.action(a, b, split, width, t),
                     mean_corrected.hessian(a, b, split, width, t), kr=kr, mean_scale=b)

    def _solve_multi_output(self) -> None:
        arch, t = self.architecture, self.temperature
        _warn_zero_mean(arch, self.x_train, "several outputs")
        width = arch.widths[0]
        qbar = multi_output.zero_temperature(self.spectrum, width)
        if t > 0:
            qbar = multi_output.solve(self.spectrum, width, t, _positive(qbar))
        curvature = _matrix_curvature(qbar, self.spectrum, width, t)
        self._finish((qbar,), multi_output.action(qbar, self.spectrum, width, t), curvature)

    def _finish(self, qbar, action, curvature, *, kr=None, mean_scale=None) -> None:
        arch = self.architecture
        n = len(self._y)
        if isinstance(qbar[0], np.ndarray):
            scales, rotation = np.linalg.eigh(qbar[0])
            renorm = readout = float(np.trace(qbar[0])) / len(scales)
            self._predictor = RenormalisedGP(self.spectrum, scales, rotation, self.temperature)
            self.renormalised_kernel = None
        else:
            renorm, readout = float(np.prod(qbar)), float(qbar[-1])
            n_out = self._y.shape[1]  # > 1 only for the infinite-width GP of several outputs
            if kr is None:
                self._predictor = RenormalisedGP(self.spectrum, np.full(n_out, renorm),
                                                 np.eye(n_out), self.temperature)
                self.renormalised_kernel = renorm * self.kernel
            else:
                spec = one_layer.Spectrum.of(kr, self._y)
                self._predictor = RenormalisedGP(spec, np.ones(1), np.eye(1), self.temperature)
                self.renormalised_kernel = kr
        self.order_parameters = OrderParameters(
            qbar=tuple(qbar), action=float(action), curvature=np.asarray(curvature),
            renormalisation=renorm, readout=readout, mean_scale=mean_scale, r=self.r,
            alphas=tuple(n / w for w in arch.widths))

    # -- predictor protocol ---------------------------------------------------------------
    def _moments(self, k0, k00, x):
        if self._mean_split is not None:
            means, a, b = self._mean_split
            lam = self.architecture.priors[-1]
            mx = kernels.activation_mean(self.architecture.activation,
                                         kernels.last_hidden_variances(self.architecture, x))
            k0 = mean_corrected.renormalised(k0, mx, means, lam, a, b)
            k00 = a * (k00 - mx**2 / lam) + b * mx**2 / lam
        return self._predictor.predict(k0, k00)

    def _train_error(self) -> ErrorBreakdown:
        return self._predictor.train_error()

    def infinite_width(self) -> ProportionalTheory:
        """The same network at infinite width: the NNGP posterior (all ``Qbar_l = 1``)."""
        return ProportionalTheory(self.architecture, self.x_train, self.y_train,
                                  self.temperature, mean_correction=False, kernel=self.kernel,
                                  fixed_qbar=1.0)


def _positive(qbar: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh(qbar)
    return (vectors * np.clip(values, 1e-3, None)) @ vectors.T


def _matrix_curvature(qbar, spec, width, t, step=1e-6) -> np.ndarray:
    """Hessian of S in the independent entries of the symmetric ``Qbar`` (finite differences)."""
    rows, cols = np.triu_indices(len(qbar))
    h = np.empty((len(rows), len(rows)))
    for j, (a, b) in enumerate(zip(rows, cols, strict=True)):
        e = np.zeros_like(qbar)
        e[a, b] = e[b, a] = step
        diff = (multi_output.gradient(qbar + e, spec, width, t)
                - multi_output.gradient(qbar - e, spec, width, t)) / (2 * step)
        h[:, j] = np.where(rows == cols, 1.0, 2.0) * diff[rows, cols]
    return (h + h.T) / 2


def _warn_zero_mean(arch: BayesianMLP, x, where: str) -> None:
    means = kernels.activation_mean(arch.activation, kernels.last_hidden_variances(arch, x))
    if np.any(means != 0):
        warnings.warn(f"{where}: the mean of {type(arch.activation).__name__} is not accounted "
                      "for (the zero-mean action is used; spec §3.6 corrects it for one hidden "
                      "layer and one output only)", WidenetsWarning, stacklevel=4)


def proportional(net, x_train, y_train, *, temperature: float,
                 widths: int | Sequence[int] | None = None,
                 priors: Sequence[float] | None = None,
                 mean_correction: bool | None = None) -> ProportionalTheory:
    """The proportional-limit theory of a Bayesian fully connected network.

    Solves the saddle point of the effective action of Pacelli et al. (2023): for one hidden
    layer ``S(Qbar) = Qbar - ln Qbar + (1/N_1)[ln det(T + Qbar K) + y^T (T + Qbar K)^{-1} y]``
    (spec §3.2), with two order parameters for non-zero-mean activations such as ReLU (§3.6),
    a ``D x D`` matrix for ``D`` outputs (§3.7), and one order parameter per layer with the
    product renormalisation ``u K_GP`` for deep networks (§4; exact for linear networks).  The
    posterior over outputs is then a GP with the renormalised kernel and noise ``T``.

    Parameters
    ----------
    net : widenets.Serial
        ``[Flatten(),] Dense(N_1), phi, ..., Dense(N_L), phi, Dense(D)``, no biases.
    x_train : Tensor or array, shape ``(P, N0)`` (or images, with ``Flatten`` first)
    y_train : Tensor or array, shape ``(P,)`` or ``(P, D)``
    temperature : float
        ``T >= 0``: the likelihood is ``exp(-Loss / T)`` with ``Loss = 1/2 sum (y - f)^2``;
        the prior is not divided by T.  ``T = 0`` uses the closed forms.
    widths : int or sequence of int, optional
        Hidden widths ``N_1 .. N_L`` (default: the network's).
    priors : sequence of float, optional
        Precisions ``[lambda_0, ..., lambda_L]`` of the effective weights (default: the
        network's initialisation, ``1 / weight_std^2``).  They replace the weight_std of
        ``net``; :attr:`ProportionalTheory.network` is the network whose initialisation is
        this prior.
    mean_correction : bool, optional
        Use the two-parameter action of spec §3.6 for one hidden layer and one output
        (default: whenever the activation has a non-zero mean).

    Returns
    -------
    ProportionalTheory

    Raises
    ------
    HyperparameterError, ShapeError, InputValueError

    Warns
    -----
    WidenetsWarning
        Where spec §8 says the theory is unreliable (P above the input dimension for
        nonlinear networks, deep non-homogeneous activations) or an approximation is used.

    References
    ----------
    Pacelli et al., Nat. Mach. Intell. 5, 1497 (2023); Li & Sompolinsky, PRX 11, 031059 (2021).

    Examples
    --------
    >>> import torch, widenets as wn
    >>> from widenets.theory import proportional
    >>> net = wn.serial(wn.Dense(100), wn.Erf(), wn.Dense(1))
    >>> x, y = torch.randn(40, 50, dtype=torch.float64), torch.randn(40, dtype=torch.float64)
    >>> th = proportional(net, x, y, temperature=0.01, priors=[1.0, 1.0])
    >>> round(th.order_parameters.qbar[0], 4) > 0
    True
    """
    arch = parse_network(net, widths, priors)
    x, y, t = validate(arch, x_train, y_train, temperature)
    if arch.n_outputs > 1 and arch.depth > 1:
        raise HyperparameterError(expected(
            "net", "one hidden layer for several outputs (the matrix order parameter of "
            "spec §3.7 is derived for one hidden layer)", f"{arch.depth} hidden layers"))
    check_applicability(arch, arch.prepare_inputs(x))
    return ProportionalTheory(arch, x, y, t, mean_correction=mean_correction)


class ExactDeepLinear(KernelTheory):
    """The exact finite-width posterior of a deep linear network (spec §4.1): GP formulas with
    kernel ``u K_GP`` averaged over the exact posterior of ``u``.  Made by
    :func:`exact_deep_linear`.

    ``order_parameters.qbar`` holds the posterior means ``E[Qbar_l | data]``
    (``Qbar_L = lambda_L |v|^2 / N_L``) and ``renormalisation`` the posterior mean of ``u``.
    """

    def __init__(self, arch, x, y, temperature):
        super().__init__(arch, x, y, temperature)
        self.mixture = linear.exact_mixture(self.spectrum, arch.widths, temperature)
        self._exact = linear.ExactLinearPredictor(self.spectrum, self.mixture, temperature)
        qbar = tuple(float(v) for v in self.mixture.expect(self.mixture.layer_means.T))
        u = float(self.mixture.expect(np.exp(self.mixture.log_u)))
        self.order_parameters = OrderParameters(
            qbar=qbar, action=np.nan, curvature=np.full((1, 1), np.nan), renormalisation=u,
            readout=qbar[-1], mean_scale=None, r=self.r,
            alphas=tuple(len(self._y) / w for w in arch.widths))

    def _moments(self, k0, k00, x):
        return self._exact.predict(k0, k00)

    def _train_error(self) -> ErrorBreakdown:
        return self._exact.train_error()


def exact_deep_linear(net, x_train, y_train, *, temperature: float,
                      widths: int | Sequence[int] | None = None,
                      priors: Sequence[float] | None = None) -> ExactDeepLinear:
    """The exact posterior of a deep *linear* Bayesian network at finite width (spec §4.1).

    Same arguments as :func:`proportional`; ``net`` must have no activation (or
    ``Identity``) and one output.  Exact for any widths (no saddle point): the reference that
    the proportional theory approaches with a gap of order 1/N.

    References
    ----------
    Li & Sompolinsky, PRX 11, 031059 (2021); Hanin & Zlokapa, PNAS 120 (2023).
    """
    arch = parse_network(net, widths, priors)
    if not arch.is_linear or arch.n_outputs != 1:
        raise HyperparameterError(expected(
            "net", "a linear network (no activation) with one output",
            f"activation {type(arch.activation).__name__}, {arch.n_outputs} outputs"))
    x, y, t = validate(arch, x_train, y_train, temperature)
    return ExactDeepLinear(arch, x, y, t)
