"""The 1/n effective theory of a deep MLP: the user-facing object.

A network of depth ``L`` (``L`` affine layers, ``L - 1`` hidden ones of widths
``n_1 .. n_{L-1}``) with ``b ~ N(0, C_b)``, ``W ~ N(0, C_W / n_{l-1})`` and the learning-rate
tensor ``lambda_b`` (biases), ``lambda_W / n_{l-1}`` (weights) (PDLT §2.3, §7.2;
effective_theory.md §1, §7).  widenets' ``wn.Dense(n, weight_std=sqrt(C_W),
bias_std=sqrt(C_b))`` in the NTK parameterisation draws exactly this network, and its
empirical NTK is the book's with ``lambda_W = C_W``, ``lambda_b = C_b``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from widenets.errors import HyperparameterError, ShapeError, WidenetsWarning, expected
from widenets.layers import Activation, Dense, serial
from widenets.layers.base import Layer
from widenets.theory.effective import engine
from widenets.theory.effective.activations import ActivationInfo, check_activation
from widenets.theory.effective.recursions import FIELDS, Hyper
from widenets.theory.effective.results import EffectiveStatistics
from widenets.validation import as_inputs

Tensor = torch.Tensor
EXPANSION_WARNING = 0.3


def _per_layer(name: str, value, depth: int) -> tuple[float, ...]:
    values = [value] * depth if isinstance(value, int | float) else list(value)
    if len(values) != depth:
        raise HyperparameterError(expected(name, f"a number or {depth} numbers (one per layer)",
                                           value))
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) \
                or v < 0:
            raise HyperparameterError(expected(name, "finite numbers >= 0", value))
    return tuple(float(v) for v in values)


def _widths(widths, depth: int) -> tuple[int, ...]:
    values = [widths] * (depth - 1) if isinstance(widths, int) else list(widths)
    if len(values) != depth - 1 or any(isinstance(w, bool) or not isinstance(w, int) or w < 1
                                       for w in values):
        raise HyperparameterError(expected(
            "widths", f"a positive int or {depth - 1} positive ints (the hidden widths)", widths))
    return tuple(values)


@dataclass(frozen=True)
class EffectiveTheory:
    """Finite-width (order 1/n) statistics of a deep MLP at initialisation.

    Build it with :func:`effective`.  Every method takes inputs ``x`` of shape ``(m, n0)``
    and returns an :class:`EffectiveStatistics` with one entry per layer.
    """

    activation: Activation
    depth: int
    widths: tuple[int, ...]
    bias_var: tuple[float, ...]
    weight_var: tuple[float, ...]
    lambda_b: tuple[float, ...]
    lambda_W: tuple[float, ...]
    rtol: float = 1e-9
    _cache: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def aspect_ratio(self) -> float:
        """``L / n``: depth over the harmonic mean of the hidden widths (PDLT §3.4, ch. ε)."""
        if not self.widths:
            return 0.0
        return self.depth * sum(1 / n for n in self.widths) / len(self.widths)

    def network(self, out_features: int = 1) -> Layer:
        """The ``wn.serial`` MLP these statistics describe (NTK parameterisation).

        Its empirical NTK corresponds to ``lambda_W = weight_var`` and ``lambda_b = bias_var``.
        """
        layers: list[Layer] = []
        sizes = [*self.widths, out_features]
        for i, size in enumerate(sizes):
            if i:
                layers.append(self.activation)
            cb = self.bias_var[i]
            layers.append(Dense(size, weight_std=math.sqrt(self.weight_var[i]),
                                bias_std=math.sqrt(cb) if cb > 0 else None))
        return serial(*layers)

    # -- the four computations ----------------------------------------------------------
    def kernel(self, x) -> EffectiveStatistics:
        """Kernel ``K`` of every layer and its 1/n correction ``K1`` (any number of inputs).

        References: PDLT §4.1-4.3 (K), §4.3 and §5.4 (K1); effective_theory.md §2, §4.
        """
        return self._compute(x, "vertex", any_m=True)

    def four_point(self, x) -> EffectiveStatistics:
        """Four-point vertex ``V`` (connected four-point function times n), with ``K, K1``.

        At most two inputs (``V`` with three or four distinct inputs needs 3-D/4-D
        Gaussian integrals; not implemented).  References: PDLT §4.2-4.3, §5.4.
        """
        return self._compute(x, "vertex")

    def ntk_mean(self, x) -> EffectiveStatistics:
        """NTK mean ``H`` of every layer (any number of inputs), with ``K``.

        ``H' = lambda_b + lambda_W <sigma sigma> + C_W <sigma' sigma'> H``  (PDLT §8.1).
        """
        return self._compute(x, "ntk", any_m=True)

    def ntk_fluctuations(self, x) -> EffectiveStatistics:
        """NTK fluctuation tensors ``A, B`` and cross-correlations ``D, F`` (with K, K1, V, H).

        At most two inputs.  References: PDLT §8.2-8.3, ch. 9; effective_theory.md §8.
        """
        return self._compute(x, "ntk_fluctuations")

    def posterior_mean(self, x_train, y_train, x_test=None, noise_var: float = 0.0) -> dict:
        """Bayesian posterior mean of the outputs at O(1/n) (PDLT §6.4); warns where the
        expansion is unreliable.  See :func:`widenets.theory.effective.bayes.posterior_mean`."""
        from widenets.theory.effective.bayes import posterior_mean

        return posterior_mean(self, x_train, y_train, x_test, noise_var)

    # -- internals ------------------------------------------------------------------------
    def gram(self, x) -> Tensor:
        """``x x^T / n0`` of validated inputs, float64."""
        t = as_inputs("x", x, torch.float64)
        if t.ndim != 2:
            raise ShapeError(expected("x", "of shape (m, n0) (an MLP takes flat inputs)",
                                      tuple(t.shape)))
        return t @ t.T / t.shape[1]

    def _compute(self, x, what: str, any_m: bool = False) -> EffectiveStatistics:
        g0 = self.gram(x)
        m = g0.shape[0]
        if m > 2 and not any_m:
            raise ShapeError(expected("x", "at most 2 inputs for the four-index tensors "
                                      "(V, A, B, D, F)", tuple(torch.as_tensor(x).shape)))
        base = (g0.cpu().numpy().tobytes(), m)
        # a computation of more fields serves the smaller requests too
        found = [self._cache[(*base, w)] for w in (what, "ntk_fluctuations")
                 if (*base, w) in self._cache and set(FIELDS[what]) <= set(FIELDS[w])]
        if not found:
            if len(self._cache) >= 16:  # keep the few most recent inputs only
                self._cache.pop(next(iter(self._cache)))
            self._cache[(*base, what)] = self._run(g0, what)
            found = [self._cache[(*base, what)]]
        stats = found[0]
        if stats.V is not None and self.depth > 1:
            self._warn_expansion(stats)
        return stats

    def _run(self, g0: Tensor, what: str) -> EffectiveStatistics:
        fields = FIELDS[what]
        hypers = [Hyper(*h) for h in zip(self.bias_var, self.weight_var, self.lambda_b,
                                         self.lambda_W, strict=True)]
        ratios = [1.0] + [self.widths[i] / self.widths[i - 1]
                          for i in range(1, len(self.widths))]
        states, diag = engine.propagate(g0, hypers, ratios[: self.depth - 1],
                                        ActivationInfo(self.activation), fields, self.rtol)
        widths = torch.tensor([math.inf, *self.widths], dtype=torch.float64)
        stacked = {f: torch.stack([s[f] for s in states]) for f in states[0]}
        return EffectiveStatistics(widths=widths, quadrature_error=diag.max_error, **stacked)

    def _warn_expansion(self, stats: EffectiveStatistics) -> None:
        eps = stats.expansion_parameter()
        if eps > EXPANSION_WARNING:
            warnings.warn(
                f"V/(n K^2) = {eps:.3g} at the output (L/n = {self.aspect_ratio:.3g}): the "
                "O(1/n^2) terms change these O(1/n) results by roughly half that fraction; "
                "use wider or shallower networks for quantitative predictions.",
                WidenetsWarning, stacklevel=3)


def effective(activation, depth: int = 8, widths: int | Sequence[int] = 128,
              bias_var: float | Sequence[float] = 0.0,
              weight_var: float | Sequence[float] = 1.0,
              lambda_b: float | Sequence[float] = 1.0,
              lambda_W: float | Sequence[float] = 1.0, *,
              rtol: float = 1e-9) -> EffectiveTheory:
    """The 1/n effective theory of a deep MLP (Roberts, Yaida & Hanin, PDLT, ch. 4-9).

    Parameters
    ----------
    activation : Activation or str
        E.g. ``wn.Tanh()``, ``wn.Gelu()`` (``z Phi(z)``), ``wn.Silu()`` (SWISH), ``"relu"``.
    depth : int
        ``L``, the number of affine layers (the last one is the linear output layer).
    widths : int or sequence of ``L - 1`` ints
        Hidden widths ``n_1 .. n_{L-1}``; an int means all equal.
    bias_var, weight_var : float or sequence of ``L`` floats
        ``C_b`` and ``C_W`` (per layer or shared).
    lambda_b, lambda_W : float or sequence of ``L`` floats
        Learning-rate hyperparameters (biases: ``lambda_b``, weights: ``lambda_W / n_{l-1}``).
    rtol : float
        Relative tolerance of every Gaussian expectation (quadrature level chosen to meet it).

    Examples
    --------
    >>> import torch, widenets as wn
    >>> th = wn.theory.effective(activation=wn.Tanh(), depth=8, widths=128)
    >>> stats = th.kernel(torch.ones(1, 10))
    >>> round(float(stats.K1[-1, 0, 0]), 4)
    -0.0962
    """
    act = check_activation(activation)
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise HyperparameterError(expected("depth", "a positive int", repr(depth)))
    if not (isinstance(rtol, float) and 1e-13 <= rtol < 1e-2):
        raise HyperparameterError(expected("rtol", "a float in [1e-13, 1e-2)", repr(rtol)))
    return EffectiveTheory(act, depth, _widths(widths, depth),
                           _per_layer("bias_var", bias_var, depth),
                           _per_layer("weight_var", weight_var, depth),
                           _per_layer("lambda_b", lambda_b, depth),
                           _per_layer("lambda_W", lambda_W, depth), rtol)

