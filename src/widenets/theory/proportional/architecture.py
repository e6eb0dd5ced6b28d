"""Read a widenets network as the Bayesian network of the proportional theory (spec §1).

The theory describes fully connected networks without biases in standard scaling,
``h^(l+1) = W_l phi(h^(l)) / sqrt(N_l)``, with Gaussian priors given by *precisions*
``lambda_l`` on the effective weights.  A widenets ``Dense(n, weight_std=s, bias_std=None)``
draws exactly these weights with ``lambda = 1 / s^2``, in either parameterisation (the NTK one
stores ``N(0, 1)`` variables and scales them by ``s / sqrt(fan_in)`` in the forward pass).  So
a network's own initialisation distribution *is* a prior of the theory, and the Langevin
sampler's default prior (precision 1 on the stored variables of the NTK parameterisation) is
``lambda_l = 1 / weight_std_l^2`` on the effective weights.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
import torch

from widenets.errors import HyperparameterError, ShapeError, expected
from widenets.layers import Activation, Dense, Flatten, Identity, Serial
from widenets.layers.relu import ABRelu, Abs, LeakyRelu, Relu

# activations whose dual kernel is positively homogeneous of degree one in the covariance,
# kappa(s C) = s kappa(C): for them the nested and product deep kernels coincide (spec §4.3)
_HOMOGENEOUS = (Identity, Relu, LeakyRelu, Abs, ABRelu)


@dataclasses.dataclass(frozen=True)
class BayesianMLP:
    """A bias-free fully connected network with Gaussian priors, as the theory sees it.

    Attributes
    ----------
    activation : Activation or None
        The nonlinearity ``phi`` of every hidden layer; None for a linear network.
    widths : tuple of int
        Hidden widths ``N_1 .. N_L``.
    priors : tuple of float
        Precisions ``lambda_0 .. lambda_L`` of the effective weights (``lambda_L``: readout).
    n_outputs : int
        Number of outputs ``D`` of the readout.
    flatten : bool
        Whether inputs are flattened first (images).
    """

    activation: Activation | None
    widths: tuple[int, ...]
    priors: tuple[float, ...]
    n_outputs: int = 1
    flatten: bool = False

    @property
    def depth(self) -> int:
        """Number of hidden layers ``L``."""
        return len(self.widths)

    @property
    def is_linear(self) -> bool:
        return self.activation is None

    @property
    def is_homogeneous(self) -> bool:
        """Whether the deep kernel is exactly renormalised by the product of the Qbar_l."""
        return self.activation is None or isinstance(self.activation, _HOMOGENEOUS)

    def network(self) -> Serial:
        """The widenets network (NTK parameterisation, ``weight_std = 1/sqrt(lambda_l)``,
        no biases) whose initialisation is this prior."""
        layers: list = [Flatten()] if self.flatten else []
        for width, lam in zip(self.widths, self.priors[:-1], strict=True):
            layers.append(Dense(width, weight_std=1 / math.sqrt(lam)))
            if self.activation is not None:
                layers.append(self.activation)
        layers.append(Dense(self.n_outputs, weight_std=1 / math.sqrt(self.priors[-1])))
        return Serial(tuple(layers))

    def langevin_precisions(self, net: Serial) -> list[float]:
        """Precisions, on the *stored* parameters of ``net.module()``, that give this prior.

        In the NTK parameterisation the effective weight is ``weight_std * stored``, so an
        effective precision ``lambda`` is ``lambda * weight_std^2`` on the stored variable;
        in the standard one the stored weight *is* the effective weight (times
        ``1/sqrt(fan_in)``, with ``fan_in * lambda`` precision).
        """
        out = []
        denses = [layer for layer in net.layers if isinstance(layer, Dense)]
        for dense, lam in zip(denses, self.priors, strict=True):
            if dense.parameterization == "ntk":
                out.append(lam * dense.weight_std**2)
            else:
                raise HyperparameterError(expected(
                    "net", "in the NTK parameterisation to map priors to stored parameters",
                    dense.parameterization))
        return out

    def input_dimension(self, x: torch.Tensor) -> int:
        return int(math.prod(x.shape[1:]))

    def prepare_inputs(self, x: torch.Tensor, name: str = "x_train") -> torch.Tensor:
        """Flatten images when the network does; the theory needs ``(n, N0)`` inputs."""
        if self.flatten:
            return x.reshape(len(x), -1)
        if x.ndim != 2:
            raise ShapeError(expected(name, "of shape (n, N0) (add wn.Flatten() first for "
                                      "images)", tuple(x.shape)))
        return x


def parse_network(net, widths: int | Sequence[int] | None = None,
                  priors: Sequence[float] | None = None) -> BayesianMLP:
    """The :class:`BayesianMLP` of ``net``, with its hidden widths and priors replaced.

    Parameters
    ----------
    net : widenets.Serial
        ``[Flatten()], Dense(N_1), phi, ..., Dense(N_L), phi, Dense(D)`` with ``bias_std=None``
        everywhere and one activation type (``Identity`` or none for a linear network).
    widths : int or sequence of int, optional
        Hidden widths ``N_1 .. N_L``; default: the network's own.
    priors : sequence of float, optional
        Precisions ``lambda_0 .. lambda_L`` of the effective weights; default: the network's
        own initialisation, ``lambda_l = 1 / weight_std_l^2``.

    Raises
    ------
    HyperparameterError
        If the network is not of that form, or widths/priors have the wrong length or sign.
    """
    if not isinstance(net, Serial | Dense):
        raise HyperparameterError(expected(
            "net", "a widenets network such as wn.serial(wn.Dense(N_1), wn.Erf(), wn.Dense(1))",
            type(net).__name__))
    layers = list(net.layers) if isinstance(net, Serial) else [net]
    flatten = bool(layers) and isinstance(layers[0], Flatten)
    layers = layers[1:] if flatten else layers
    denses, activations = [], []
    for i, layer in enumerate(layers):
        if isinstance(layer, Dense):
            if layer.bias_std is not None:
                raise HyperparameterError(
                    f"layer {i + flatten} (Dense): `bias_std` must be None: the proportional "
                    f"theory describes bias-free networks; got {layer.bias_std}.")
            denses.append(layer)
        elif isinstance(layer, Activation):
            if not denses or (activations and len(activations) >= len(denses)):
                raise _bad_form(i + flatten, layer)
            activations.append(layer)
        else:
            raise _bad_form(i + flatten, layer)
    if len(denses) < 2 or not isinstance(layers[-1], Dense):
        raise HyperparameterError(expected(
            "net", "Dense layers with at least one hidden layer, ending in a Dense readout",
            f"{len(denses)} Dense layer(s)"))
    activation = _common_activation(activations, len(denses) - 1)
    depth = len(denses) - 1
    widths = _widths(widths, [d.out_features for d in denses[:-1]])
    if priors is None:
        priors = [1 / d.weight_std**2 if d.weight_std > 0 else math.inf for d in denses]
    wanted = f"{depth + 1} positive finite precisions [lambda_0, ..., lambda_{depth}]"
    try:
        if isinstance(priors, str) or any(isinstance(p, bool) for p in priors):
            raise TypeError
        values = tuple(float(p) for p in priors)
    except (TypeError, ValueError) as err:
        raise HyperparameterError(expected("priors", wanted, repr(priors))) from err
    if len(values) != depth + 1 or not all(math.isfinite(p) and p > 0 for p in values):
        raise HyperparameterError(expected("priors", wanted, list(values)))
    priors = values
    return BayesianMLP(activation, widths, priors, denses[-1].out_features, flatten)


def _bad_form(index: int, layer) -> HyperparameterError:
    return HyperparameterError(
        f"layer {index} ({type(layer).__name__}): the proportional theory needs "
        "[Flatten(),] Dense, activation, ..., Dense (fully connected, one activation after "
        "each hidden Dense).")


def _common_activation(activations: list, n_hidden: int) -> Activation | None:
    if not activations:
        return None
    if len(activations) != n_hidden or any(a != activations[0] for a in activations):
        raise HyperparameterError(expected(
            "net", "the same activation after every hidden Dense layer",
            [type(a).__name__ for a in activations]))
    return None if isinstance(activations[0], Identity) else activations[0]


def _widths(widths, default: list[int]) -> tuple[int, ...]:
    if widths is None:
        return tuple(default)
    wanted = f"{len(default)} positive hidden width(s)"
    if isinstance(widths, int | np.integer) and not isinstance(widths, bool):
        widths = [int(widths)] * len(default)
    if isinstance(widths, str | bool) or not isinstance(widths, Sequence | np.ndarray):
        raise HyperparameterError(expected("widths", wanted, repr(widths)))
    widths = list(widths)
    if len(widths) != len(default) or not all(
            isinstance(w, int | np.integer) and not isinstance(w, bool) and w >= 1
            for w in widths):
        raise HyperparameterError(expected("widths", wanted, widths))
    return tuple(int(w) for w in widths)
