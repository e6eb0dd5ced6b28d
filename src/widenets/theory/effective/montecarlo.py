"""Monte Carlo over finite networks, batched, for checking the 1/n theory.

Three ways to get the same networks (effective_theory.md §4.1, §12):

* :func:`from_modules` stacks the parameters of modules built by ``net.module(seed=...)``;
* :func:`sample_parameters` draws the same parameters directly: i.i.d. N(0, 1) variables of
  the same shapes, scaled as ``wn.Dense`` scales them (``W = sqrt(C_W / fan_in) omega``,
  ``b = sqrt(C_b) beta``), so identical in law to ``net.module()``;
* :func:`stochastic_metric` samples preactivations layer by layer from their conditional law
  ``z^{(l+1)} | layer l ~ N(0, G^{(l+1)})`` i.i.d. over neurons, with the stochastic metric
  ``G = C_b + (C_W / n_l) sigma sigma^T``: exact in law, O(n m^2) per layer instead of O(n^2).

:func:`forward` runs a batch of networks and returns, per network, the outputs, the output
layer's stochastic metric (the output covariance given the last hidden layer: averaging the
readout weights out in closed form, a Rao-Blackwellised estimator of ``E[z z]``) and the full
NTK ``H_{ij;ab}`` of the output units by backpropagation,
``H = sum_l sum_k g^l_{ik;a} g^l_{jk;b} [lambda_b + lambda_W h^{l-1}_a . h^{l-1}_b / n_{l-1}]``
with ``g^l = dz^L / dz^l`` (PDLT §7.2, §8.0).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from widenets.finite.modules import Affine
from widenets.theory.effective.activations import ActivationInfo
from widenets.theory.effective.theory import EffectiveTheory

Tensor = torch.Tensor


@dataclass
class Networks:
    """Parameters of ``S`` networks: ``weights[l]`` (S, n_out, n_in), ``biases[l]`` (S, n_out)
    or None, already scaled (the effective weights and biases)."""

    weights: list[Tensor]
    biases: list[Tensor | None]


@dataclass
class Batch:
    """Per-network results: ``z`` (S, n_L, m) outputs, ``metric`` (S, m, m) the output
    covariance given the last hidden layer, ``ntk`` (S, n_L, n_L, m, m) or None."""

    z: Tensor
    metric: Tensor
    ntk: Tensor | None = None


def from_modules(models: list[torch.nn.Module]) -> Networks:
    """Stack the effective weights and biases of modules built by ``net.module()``."""
    per_model = []
    for model in models:
        layers = [m for m in model.modules() if isinstance(m, Affine)]
        params = []
        for layer in layers:
            if layer.kernel_size:
                raise ValueError("from_modules: only dense layers are supported")
            w, b = layer.weight.detach(), None if layer.bias is None else layer.bias.detach()
            if layer.parameterization == "ntk":
                w = w * (layer.weight_std / math.sqrt(w.shape[1]))
                b = None if b is None else b * layer.bias_std
            params.append((w, b))
        per_model.append(params)
    weights = [torch.stack([p[i][0] for p in per_model]) for i in range(len(per_model[0]))]
    biases = [None if per_model[0][i][1] is None else torch.stack([p[i][1] for p in per_model])
              for i in range(len(per_model[0]))]
    return Networks(weights, biases)


def sample_parameters(theory: EffectiveTheory, in_features: int, out_features: int,
                      n_networks: int, generator: torch.Generator) -> Networks:
    """Draw ``n_networks`` networks from the law ``theory.network(out_features).module()``
    draws them from (the same shapes, N(0, 1) variables scaled in the same way)."""
    sizes = [in_features, *theory.widths, out_features]
    weights, biases = [], []
    for i in range(theory.depth):
        shape = (n_networks, sizes[i + 1], sizes[i])
        omega = torch.randn(shape, generator=generator, dtype=torch.float64)
        weights.append(omega * math.sqrt(theory.weight_var[i] / sizes[i]))
        cb = theory.bias_var[i]
        biases.append(None if cb == 0 else math.sqrt(cb) * torch.randn(
            shape[:2], generator=generator, dtype=torch.float64))
    return Networks(weights, biases)


def forward(theory: EffectiveTheory, nets: Networks, x: Tensor, ntk: bool = False) -> Batch:
    """Outputs, output-layer stochastic metric and (optionally) NTK of a batch of networks."""
    act = ActivationInfo(theory.activation)
    s = nets.weights[0].shape[0]
    h = x.to(torch.float64).expand(s, *x.shape)
    inputs, slopes = [h], []
    for i, (w, b) in enumerate(zip(nets.weights, nets.biases, strict=True)):
        z = h @ w.transpose(1, 2)
        if b is not None:
            z = z + b[:, None, :]
        if i < theory.depth - 1:
            if ntk:
                slopes.append(act.derivative(z))
            h = act.function(z)
            inputs.append(h)
    last = inputs[-1]
    metric = theory.bias_var[-1] + theory.weight_var[-1] * last @ last.transpose(1, 2) \
        / last.shape[-1]
    out = Batch(z.transpose(1, 2), metric)
    if ntk:
        out.ntk = _ntk(theory, nets, inputs, slopes)
    return out


def _ntk(theory, nets, inputs, slopes) -> Tensor:
    s, m, n_out = inputs[0].shape[0], inputs[0].shape[1], nets.weights[-1].shape[1]
    g = torch.eye(n_out, dtype=torch.float64).expand(s, m, n_out, n_out)  # dz^L / dz^L
    total = torch.zeros(s, n_out, n_out, m, m, dtype=torch.float64)
    for layer in reversed(range(theory.depth)):
        h = inputs[layer]
        factor = theory.lambda_b[layer] + theory.lambda_W[layer] * h @ h.transpose(1, 2) \
            / h.shape[-1]
        total += torch.einsum("saik,sbjk->sijab", g, g) * factor[:, None, None]
        if layer:
            # g^{l-1}_a = g^l_a W^l diag(sigma'(z^{l-1}_a))
            g = torch.einsum("saik,skj->saij", g, nets.weights[layer]) \
                * slopes[layer - 1][:, :, None, :]
    return total


def stochastic_metric(theory: EffectiveTheory, x: Tensor, n_networks: int,
                      generator: torch.Generator, out_features: int = 2) -> Batch:
    """Preactivations of ``n_networks`` networks sampled through their stochastic metrics.

    Exact in law (effective_theory.md §4.1): given layer ``l``, the rows of layer ``l+1`` are
    i.i.d. ``N(0, G)`` with ``G = C_b + (C_W/n_l) sigma(z^l)^T sigma(z^l)``.
    """
    act = ActivationInfo(theory.activation)
    x = x.to(torch.float64)
    g = theory.bias_var[0] + theory.weight_var[0] * x @ x.T / x.shape[1]
    g = g.expand(n_networks, *g.shape)
    for i, n in enumerate(theory.widths):
        z = _gaussian_rows(g, n, generator)
        s = act.function(z)
        g = theory.bias_var[i + 1] + theory.weight_var[i + 1] * s.transpose(1, 2) @ s / n
    return Batch(_gaussian_rows(g, out_features, generator), g)


def _gaussian_rows(g: Tensor, n: int, generator: torch.Generator) -> Tensor:
    """``n`` i.i.d. rows ``N(0, g)`` for each of the S covariances ``g`` (S, m, m)."""
    xi = torch.randn(g.shape[0], n, g.shape[1], generator=generator, dtype=torch.float64)
    return xi @ _cholesky(g).transpose(1, 2)


def _cholesky(g: Tensor) -> Tensor:
    """Lower Cholesky factor of PSD 1x1 or 2x2 matrices, exact for singular ones (a dead
    ReLU layer gives G = 0); general m falls back to torch with a tiny jitter."""
    m = g.shape[-1]
    if m == 1:
        return torch.sqrt(g.clamp(min=0))
    if m == 2:
        l11 = torch.sqrt(g[:, 0, 0].clamp(min=0))
        l21 = torch.where(l11 > 0, g[:, 1, 0] / torch.where(l11 > 0, l11, 1.0), 0.0)
        l22 = torch.sqrt((g[:, 1, 1] - l21 * l21).clamp(min=0))
        zero = torch.zeros_like(l11)
        return torch.stack([torch.stack([l11, zero], -1), torch.stack([l21, l22], -1)], -2)
    eye = torch.eye(m, dtype=g.dtype)
    return torch.linalg.cholesky(g + 1e-12 * g.diagonal(dim1=1, dim2=2).mean(-1)[:, None,
                                                                                    None] * eye)


def chunks(n_networks: int, per_network_cost: int, budget: int = 2**24) -> Iterator[range]:
    """Split ``range(n_networks)`` into batches of at most ``budget`` numbers in memory."""
    size = max(1, budget // max(per_network_cost, 1))
    for start in range(0, n_networks, size):
        yield range(start, min(start + size, n_networks))
