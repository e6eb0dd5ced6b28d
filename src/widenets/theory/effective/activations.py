"""What the effective theory needs to know about an activation.

The activation objects of :mod:`widenets.layers` give the finite function (``.function``) and,
for most of them, closed-form dual kernels (``.dual``).  This module adds, without touching
them: the derivative (the activation's own ``derivative`` when it has one, else autograd),
Taylor coefficients at 0 (the K* = 0 universality class), the slopes of positively
homogeneous activations (the scale-invariant class), and the command-line names.

Definitions used throughout (effective_theory.md §3.3): ``GELU(z) = z Phi(z)`` with the exact
normal CDF (``wn.Gelu``), ``SWISH(z) = z / (1 + e^{-z})`` (``wn.Silu``), ``erf`` the plain
error function (``wn.Erf()``), linear = ``wn.Identity()``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from widenets.errors import HyperparameterError, expected
from widenets.layers import (
    ABRelu,
    Abs,
    Activation,
    Elementwise,
    Erf,
    Gelu,
    Identity,
    LeakyRelu,
    Relu,
    Sigmoid,
    Sign,
    Silu,
    Sin,
    Softplus,
    Tanh,
)

Tensor = torch.Tensor

NAMES = {
    "tanh": Tanh, "erf": Erf, "sin": Sin, "relu": Relu, "leaky_relu": LeakyRelu,
    "linear": Identity, "identity": Identity, "abs": Abs, "gelu": Gelu, "swish": Silu,
    "silu": Silu, "sigmoid": Sigmoid, "softplus": Softplus,
}


def from_name(name: str, slope: float | None = None) -> Activation:
    """The activation called ``name`` (``"leaky_relu"`` takes ``slope``, default 0.01)."""
    key = name.strip().lower().replace("-", "_")
    if key not in NAMES:
        raise HyperparameterError(expected("activation", f"one of {tuple(sorted(NAMES))}",
                                           repr(name)))
    if key == "leaky_relu":
        return LeakyRelu(0.01 if slope is None else slope)
    return NAMES[key]()


def check_activation(activation) -> Activation:
    """Validate the ``activation`` argument of the public functions."""
    if isinstance(activation, str):
        return from_name(activation)
    if not isinstance(activation, Activation):
        raise HyperparameterError(expected("activation", "a widenets activation such as "
                                           "wn.Tanh() or a name such as 'tanh'",
                                           repr(activation)))
    if isinstance(activation, Sign):
        raise HyperparameterError(
            "`activation` must be continuous for the effective theory; got Sign() (its "
            "derivative is a delta function, so chi_perp and the NTK are infinite).")
    return activation


@dataclass(frozen=True)
class ActivationInfo:
    """The activation, its derivative and its structural properties."""

    activation: Activation

    def function(self, z: Tensor) -> Tensor:
        return self.activation.function(z)

    def derivative(self, z: Tensor) -> Tensor:
        given = getattr(self.activation, "derivative", None)
        if isinstance(self.activation, Elementwise) and given is not None:
            return given(z)
        with torch.enable_grad():
            x = z.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(self.activation.function(x).sum(), x)
        return grad.detach()

    @property
    def closed_form(self) -> bool:
        """Whether ``.dual`` is exact (everything but the Gauss-Hermite ``Elementwise``)."""
        return not isinstance(self.activation, Elementwise)

    def taylor(self, order: int = 3) -> list[float]:
        """``[sigma(0), sigma'(0), ..., sigma^(order)(0)]`` by repeated autograd."""
        x = torch.zeros(1, dtype=torch.float64, requires_grad=True)
        g = self.activation.function(x)
        out = [float(g.detach())]
        for _ in range(order):
            (g,) = torch.autograd.grad(g.sum(), x, create_graph=True)
            out.append(float(g.detach()))
        return out

    def homogeneous_slopes(self) -> tuple[float, float] | None:
        """``(a_plus, a_minus)`` if ``sigma(z) = a_+ z`` (z > 0), ``a_- z`` (z < 0), else None.

        Checked on a log grid from 1e-4 to 1e4 on both sides to 1e-13 relative: the
        scale-invariant class of effective_theory.md §3.2 (ReLU, leaky ReLU, linear, |z|).
        """
        if isinstance(self.activation, ABRelu):
            return float(self.activation.b), float(self.activation.a)
        z = torch.logspace(-4, 4, 81, dtype=torch.float64)
        with torch.no_grad():
            a_plus = float(self.activation.function(torch.ones(1, dtype=torch.float64)))
            a_minus = -float(self.activation.function(-torch.ones(1, dtype=torch.float64)))
            plus = self.activation.function(z)
            minus = self.activation.function(-z)
            zero = float(self.activation.function(torch.zeros(1, dtype=torch.float64)))
        scale = max(abs(a_plus), abs(a_minus), 1e-300) * z
        ok = (zero == 0.0 and bool(((plus - a_plus * z).abs() <= 1e-13 * scale).all())
              and bool(((minus + a_minus * z).abs() <= 1e-13 * scale).all()))
        return (a_plus, a_minus) if ok and (a_plus != 0 or a_minus != 0) else None


def scale_invariant_constants(a_plus: float, a_minus: float) -> dict[str, float]:
    """``A2 = (a+^2 + a-^2)/2``, ``A4 = (a+^4 + a-^4)/2`` and ``nu = 3 A4 / A2^2 - 1``.

    With ``sigma = a_+ z`` (z > 0), ``a_- z`` (z < 0): ``<sigma^2>_K = A2 K``,
    ``<sigma^4>_K = 3 A4 K^2`` and, at criticality, ``V/K^2 = nu (l - 1)``
    (effective_theory.md §3.4, §5).
    """
    a2 = (a_plus**2 + a_minus**2) / 2
    a4 = (a_plus**4 + a_minus**4) / 2
    return {"A2": a2, "A4": a4, "nu": 3 * a4 / a2**2 - 1}


def describe(activation: Activation) -> str:
    """A short human name, e.g. ``'LeakyRelu(alpha=0.1)'``."""
    text = repr(activation)
    return text if len(text) < 60 else type(activation).__name__

