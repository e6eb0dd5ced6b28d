"""The Bayesian posterior of a finite network, in whitened coordinates (proportional.md §1).

The density over the module's stored (trained) parameters is

    p(theta | data)  ∝  exp( -Loss(theta) / T - sum_l (precision_l / 2) |theta_l|^2 ),
    Loss = 1/2 sum_mu sum_a (y^mu_a - f_a(x^mu))^2          (a sum, not a mean)

Precisions are given, as in Pacelli et al. 2023, for the *effective* weights ``w_eff =
sqrt(fan_in) * (weight applied in the forward pass)``, i.e. for the network written as
``h' = (1/sqrt(fan_in)) sum_j w_eff_ij phi(h_j)``; biases are the applied biases.  The default
precision of each layer is that of its own initialisation (``1 / weight_std^2`` and
``1 / bias_std^2``), which on the stored N(0, 1) variables of the NTK parameterisation is 1.
The sampler runs on whitened variables ``z = sqrt(stored precision) * theta`` (prior N(0, I)),
so that one step size suits every layer of the prior.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.func import functional_call, vmap

from widenets.errors import HyperparameterError, ShapeError, expected
from widenets.finite.modules import Affine

Tensor = torch.Tensor


@dataclass(frozen=True)
class Block:
    """One trained parameter tensor: its name in the module, shape and stored precision."""

    name: str
    shape: tuple[int, ...]
    precision: float
    layer: int  # index of its Affine layer, in the order the network applies them
    kind: str  # "weight" or "bias"

    @property
    def size(self) -> int:
        return math.prod(self.shape)


def affine_layers(model: torch.nn.Module) -> list[tuple[str, Affine]]:
    """The widenets Affine modules of ``model`` with their names, in application order."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, Affine)]


def _prefix(name: str, attr: str) -> str:
    return f"{name}.{attr}" if name else attr


def stored_precisions(layer: Affine, prior) -> tuple[float, float | None]:
    """Precisions of the stored weight and bias given Pacelli-style effective precisions.

    ``prior`` is None (the initialisation), a float (weight precision) or a pair
    ``(weight precision, bias precision)``.  A zero std gives an infinite default precision:
    such a parameter has no effect on the output and is held fixed (returned as ``inf``).
    """
    w_prec, b_prec = (None, None) if prior is None else \
        (prior if isinstance(prior, tuple | list) else (prior, None))
    w_std, b_std = layer.weight_std, layer.bias_std
    # stored weight = applied weight * (sqrt(fan_in)/w_std) [ntk] or applied weight [standard]
    w_scale2 = w_std**2 if layer.parameterization == "ntk" else float(layer.fan_in)
    b_scale2 = (b_std or 0.0) ** 2 if layer.parameterization == "ntk" else 1.0
    if w_prec is None:
        w_prec = math.inf if w_std == 0 else 1.0 / w_std**2
    if b_std is not None and b_prec is None:
        b_prec = math.inf if b_std == 0 else 1.0 / b_std**2
    weight = math.inf if w_scale2 == 0 or math.isinf(w_prec) else w_prec * w_scale2
    bias = None
    if layer.bias is not None:
        bias = math.inf if b_scale2 == 0 or math.isinf(b_prec) else b_prec * b_scale2
    return weight, bias


def _check_priors(priors, n_layers: int) -> list:
    if priors is None:
        return [None] * n_layers
    priors = list(priors)
    if len(priors) != n_layers:
        raise HyperparameterError(expected("priors", f"one precision (or a (weight, bias) pair) "
                                           f"per affine layer, {n_layers} in all", priors))
    for p in priors:
        values = p if isinstance(p, tuple | list) else (p,)
        for v in values:
            if v is not None and (isinstance(v, bool) or not isinstance(v, int | float)
                                  or not v > 0):
                raise HyperparameterError(expected("priors", "positive precisions", priors))
    return priors


class Posterior:
    """Energy ``U(z) = Loss / T + |z|^2 / 2`` of a network's posterior over whitened variables.

    Parameters are batched over independent chains: a coordinate vector has shape ``(C, dim)``.

    Parameters
    ----------
    model : torch.nn.Module
        A network built by ``net.module()`` with materialised parameters; every parameter must
        belong to a widenets ``Affine`` layer.
    x_train, y_train : Tensor
        Inputs ``(n, ...)`` and targets ``(n, k)`` (already validated).
    temperature : float
    priors : sequence, optional
        Per affine layer: None, a weight precision, or ``(weight, bias)`` precisions (see the
        module docstring).
    trained : {"all", "readout"}
        Which layers are sampled; the others stay at their values in ``model``.
    """

    def __init__(self, model: torch.nn.Module, x_train: Tensor, y_train: Tensor,
                 temperature: float, priors=None, trained: str = "all"):
        self.model, self.x_train, self.y_train = model, x_train, y_train
        self.temperature = float(temperature)
        layers = affine_layers(model)
        if not layers:
            raise HyperparameterError(expected("net", "a network with at least one Dense or "
                                               "Conv layer", type(model).__name__))
        owned = {_prefix(n, a) for n, m in layers for a in ("weight", "bias")}
        for name, _ in model.named_parameters():
            if name not in owned:
                raise HyperparameterError(expected("net", "a network whose parameters all "
                                                   "belong to widenets Dense/Conv layers",
                                                   f"the parameter {name!r}"))
        if trained not in ("all", "readout"):
            raise HyperparameterError(expected("trained", "'all' or 'readout'", repr(trained)))
        priors = _check_priors(priors, len(layers))
        self.layers = layers
        self.blocks: list[Block] = []
        self.frozen: dict[str, Tensor] = {}
        self.precisions: dict[str, float] = {}
        for index, ((name, layer), prior) in enumerate(zip(layers, priors, strict=True)):
            precisions = stored_precisions(layer, prior)
            for kind, precision in zip(("weight", "bias"), precisions, strict=True):
                param = getattr(layer, kind)
                if param is None:
                    continue
                full = _prefix(name, kind)
                self.precisions[full] = precision
                sampled = trained == "all" or index == len(layers) - 1
                if sampled and math.isfinite(precision):
                    self.blocks.append(Block(full, tuple(param.shape), precision, index, kind))
                else:
                    self.frozen[full] = param.detach()
        self.dim = sum(b.size for b in self.blocks)
        self.readout_name, self.readout = layers[-1]

    # -- coordinates ----------------------------------------------------------------------
    def whiten(self, params: dict[str, Tensor]) -> Tensor:
        """Whitened coordinates ``(C, dim)`` of batched stored parameters ``{name: (C, ...)}``."""
        return torch.cat([params[b.name].flatten(1) * math.sqrt(b.precision)
                          for b in self.blocks], dim=1)

    def parameters(self, z: Tensor) -> dict[str, Tensor]:
        """Stored trained parameters ``{name: (C, *shape)}`` at whitened coordinates ``z``."""
        out, start = {}, 0
        for b in self.blocks:
            out[b.name] = z[:, start:start + b.size].reshape(len(z), *b.shape) \
                / math.sqrt(b.precision)
            start += b.size
        return out

    def outputs(self, params: dict[str, Tensor], x: Tensor, model=None) -> Tensor:
        """Network outputs ``(C, n, k)`` for batched parameters (frozen ones added)."""
        model = self.model if model is None else model
        frozen = self.frozen

        def single(p):
            return functional_call(model, {**p, **frozen}, (x,))

        out = vmap(single)(params)
        if out.ndim != 3:
            raise ShapeError(expected("network output", "of shape (n, n_outputs)",
                                      tuple(out.shape[1:])))
        return out

    def initial(self, params: dict[str, Tensor]) -> Tensor:
        """Sampler coordinates of batched stored parameters (the starting point)."""
        return self.whiten(params)

    # -- energy ---------------------------------------------------------------------------
    def loss(self, f: Tensor) -> Tensor:
        """``Loss / T`` per chain for training outputs ``f`` of shape ``(C, n, k)``."""
        return 0.5 * ((f - self.y_train) ** 2).sum((1, 2)) / self.temperature

    def energy(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """``(U (C,), training outputs (C, n, k))`` at whitened coordinates ``z``."""
        f = self.outputs(self.parameters(z), self.x_train)
        return self.loss(f) + 0.5 * (z**2).sum(1), f

    # -- observables ----------------------------------------------------------------------
    def whitened_blocks(self, params: dict[str, Tensor]) -> dict[str, Tensor]:
        """Whitened values ``{name: (C, *shape)}`` of every parameter, from batched stored
        trained parameters (frozen ones at their fixed values; zero prior variance gives 0)."""
        n_chains = len(next(iter(params.values())))
        out = {}
        for name, precision in self.precisions.items():
            value = params[name] if name in params else \
                self.frozen[name].unsqueeze(0).expand(n_chains, *self.frozen[name].shape)
            out[name] = value * math.sqrt(precision) if math.isfinite(precision) \
                else torch.zeros_like(value)
        return out

    def order_parameters(self, params: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """``(readout order matrix (C, k, k), weight order parameter per layer (C, L))``.

        Readout: ``Qbar_ab = lambda_L sum_i v_ai v_bi / N_L`` with ``v`` the effective readout
        weights, ``lambda_L`` their precision and ``N_L`` the readout's fan-in (proportional.md
        §3.4 and §7.2: the posterior mean of ``Qbar_aa`` is the order parameter ``Qbar``).
        Layers: ``lambda_l |w_l|^2 / (number of weights)``, which averages 1 under the prior.
        """
        white = self.whitened_blocks(params)
        readout = white[_prefix(self.readout_name, "weight")].flatten(2)  # (C, k, fan_in)
        order = readout @ readout.transpose(1, 2) / readout.shape[-1]
        layers = torch.stack([white[_prefix(name, "weight")].flatten(1).pow(2).mean(1)
                              for name, _ in self.layers], dim=1)
        return order, layers


def validate_priors(priors: Sequence | None, model: torch.nn.Module) -> None:
    """Raise early (before any sampling) if ``priors`` does not fit ``model``."""
    _check_priors(priors, len(affine_layers(model)))
