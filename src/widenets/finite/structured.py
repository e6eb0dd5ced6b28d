"""Empirical NTK from the structure of dense and convolutional layers (Novak et al. 2022, §4).

For an affine layer ``z = c_w W h + c_b b`` the contribution of its weights to the NTK is

    Theta_W(x, x')[a, b] = c_w^2 sum_{o, p, q} g_a(x)[o, p] g_b(x')[o, q] <h_p(x), h_q(x')>,

with ``g_a = d f_a / d z`` the cotangent at the layer's output and ``h_p`` the input patch
at output position ``p``.  A dense layer on flat features has one position, so its weight
and bias terms factor into ``(c_w^2 <h(x), h(x')> + c_b^2) * <g_a(x), g_b(x')>``: a Gram
matrix of inputs times a Gram matrix of cotangents, with no per-example weight Jacobian ever
formed (Novak et al. 2022, "Fast finite width neural tangent kernel", ICML, §4 and App. G).
A convolution's per-example weight gradient ``sum_p g_a[:, p] h_p^T`` is formed from the
unfolded input (one batched matrix product) and contracted like a Jacobian; its bias term
factors through ``sum_p g_a[:, p]``.  Cotangents of all k outputs come from one backward
pass vectorised over the k output directions; below a dense readout, pooling and activations
they stay factored, ``g_a(x)[o, p] = A[a, o] m(x)[o, p]`` (:class:`Separable`), so the weight
gradient of the convolution under them costs O channels' products instead of k * O.
Modules with parameters that are not widenets ``Affine`` layers fall back to their own
per-example parameter Jacobian.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.func import functional_call, vjp, vmap
from torch.utils._pytree import tree_map

from widenets.errors import ShapeError, expected
from widenets.finite.modules import Activation, Affine, GlobalAvgPool, pad_input
from widenets.kernels.spatial import pad_plan

Tensor = torch.Tensor


@dataclass
class Factored:
    """``(w2 <h, h'> + b2) * <g, g'>`` with ``h`` (n, d) or None, ``g`` (n, k, o)."""

    h: Tensor | None
    g: Tensor
    w2: float
    b2: float


@dataclass
class Jacobian:
    """Per-example Jacobian block ``(n, k, D)`` times ``sqrt(scale)``, contracted directly."""

    j: Tensor
    scale: float = 1.0


@dataclass
class Separable:
    """Cotangents ``ct[i, a, o, ...] = a[a, o] * m[i, o, ...]``: what a dense readout on flat
    features, global average pooling and elementwise activations pass down."""

    a: Tensor  # (k, O)
    m: Tensor  # (n, O, *spatial), possibly a broadcast view
    ones: bool  # m is all ones

    def full(self) -> Tensor:
        extra = (None,) * (self.m.ndim - 2)
        return self.a[(None, slice(None), slice(None), *extra)] * self.m.unsqueeze(1)


def _full(ct) -> Tensor:
    return ct.full() if isinstance(ct, Separable) else ct


def leaves(model: torch.nn.Module) -> list[torch.nn.Module]:
    """``model`` as a chain of modules (nested ``nn.Sequential`` flattened)."""
    if isinstance(model, torch.nn.Sequential):
        return [leaf for child in model for leaf in leaves(child)]
    return [model]


def _has_params(module: torch.nn.Module) -> bool:
    return any(True for _ in module.parameters())


def _scales(layer: Affine) -> tuple[float, float]:
    """Factors between the stored and the applied weight and bias."""
    if layer.parameterization == "standard":
        return 1.0, 1.0 if layer.bias is not None else 0.0
    c_w = layer.weight_std / math.sqrt(layer.fan_in)
    return c_w, (layer.bias_std or 0.0) if layer.bias is not None else 0.0


@torch.no_grad()  # torch.func.vjp still differentiates; nothing else should track parameters
def features(model: torch.nn.Module, x: Tensor) -> tuple[list, int]:
    """Factored and Jacobian pieces of every parameterised module for inputs ``x``.

    Cotangents are kept example-major, ``(n, k, ...)``: ``ct[i, a] = d f_a(x_i) / d z``.
    Returns the pieces and the number of outputs ``k``.
    """
    chain = leaves(model)
    trained = [i for i, m in enumerate(chain) if _has_params(m)]
    first = trained[0] if trained else len(chain)
    inputs, pullbacks = [], []
    h = x
    for index, m in enumerate(chain):
        inputs.append(h)
        if index < first:
            h = m(h)
            pullbacks.append(None)
        else:  # keep what the backward pass needs
            h, pullback = vjp(m, h)
            pullbacks.append(pullback)
    if not isinstance(h, Tensor) or h.ndim != 2:
        raise ShapeError(expected("model output", "of shape (n, n_outputs)",
                                  tuple(getattr(h, "shape", ())) or type(h).__name__))
    k = h.shape[1]
    ct = Separable(torch.eye(k, dtype=h.dtype, device=h.device),
                   h.new_ones(1, 1).expand(len(x), k), True)
    pieces = []
    for index in range(len(chain) - 1, first - 1, -1):
        if index in trained:
            pieces += _module_pieces(chain[index], inputs[index], ct)
        if index > first:
            ct = _pull(chain[index], inputs[index], pullbacks[index], ct)
    return pieces, k


def _pull_separable(module, h, pullback, ct: Separable) -> Separable | None:
    """The factored cotangents at the module's input, or None where they do not factor."""
    if not isinstance(h, Tensor):
        return None
    if isinstance(module, Activation):
        return Separable(ct.a, ct.m * pullback(torch.ones_like(h))[0], False)
    if isinstance(module, GlobalAvgPool):
        spatial = h.shape[2:]
        m = (ct.m / math.prod(spatial)).reshape(*ct.m.shape, *[1] * len(spatial))
        return Separable(ct.a, m.expand(*ct.m.shape, *spatial), False)
    if isinstance(module, Affine) and not module.kernel_size and h.ndim == 2 and ct.ones:
        weight = module.weight * _scales(module)[0]  # (O, C): sum_o a[a, o] W[o, c]
        return Separable(ct.a @ weight, h.new_ones(1, 1).expand(len(h), weight.shape[1]),
                         True)
    return None


def _pull(module, h, pullback, ct):
    """Cotangents ``(n, k, ...)`` at the module's input, from those at its output.

    Elementwise, pooling and affine modules are pulled back directly on the ``n * k`` batch
    (a vmapped generic pullback would first copy its saved inputs k times); anything else
    through its own vectorised pullback.
    """
    if isinstance(ct, Separable):
        factored = _pull_separable(module, h, pullback, ct)
        if factored is not None:
            return factored
        if _one_convolution(module, h):
            return _affine_input_grad(module, h, ct)
        ct = ct.full()
    if isinstance(h, Tensor):
        if isinstance(module, Activation):
            # the Jacobian is diagonal: phi'(h) is the pullback of ones
            return ct * pullback(torch.ones_like(h))[0].unsqueeze(1)
        if isinstance(module, GlobalAvgPool):
            spatial = h.shape[2:]
            return (ct / math.prod(spatial)).reshape(*ct.shape, *[1] * len(spatial)) \
                .expand(*ct.shape, *spatial)
        if isinstance(module, Affine) and (module.padding != "circular"
                                           or not module.kernel_size):
            return _affine_input_grad(module, h, ct)
    return vmap(pullback, in_dims=1, out_dims=1)(ct)[0]


def _one_convolution(module, h) -> bool:
    """Whether factored cotangents can be pulled through ``module`` by one convolution."""
    return isinstance(h, Tensor) and isinstance(module, Affine) \
        and len(module.kernel_size) in (1, 2) and module.padding != "circular" \
        and all(st == 1 for st in module.stride)


def _affine_input_grad(layer: Affine, h: Tensor, ct) -> Tensor:
    weight = layer.weight * _scales(layer)[0]
    n, k = (len(h), len(ct.a)) if isinstance(ct, Separable) else ct.shape[:2]
    if not layer.kernel_size:
        if h.ndim == 2:
            return ct @ weight
        return (ct.movedim(2, -1) @ weight).movedim(-1, 2)
    dims = len(layer.kernel_size)
    if dims > 2:
        _, pullback = vjp(layer, h)
        return vmap(pullback, in_dims=1, out_dims=1)(ct)[0]
    padded = pad_input(h, layer.kernel_size, layer.stride, layer.padding).shape[2:]
    if all(st == 1 for st in layer.stride):
        # a full correlation with the flipped, transposed kernel: the same numbers as the
        # transposed convolution, through the (much faster on CPU) forward convolution
        conv = (F.conv1d, F.conv2d)[dims - 1]
        kernel = weight.flip(list(range(2, 2 + dims))).transpose(0, 1)  # (C, O, *T)
        if isinstance(ct, Separable):  # output a's kernel is A[a, o] W[o, c]: one (n, k C)
            kernel = (ct.a[(slice(None), None, slice(None), *(None,) * dims)]
                      * kernel[None]).flatten(0, 1)  # convolution of m, not k of n
            flat = ct.m.contiguous()
        else:
            flat = ct.reshape(n * k, *ct.shape[2:])
        g = conv(flat, kernel, padding=tuple(w - 1 for w in layer.kernel_size))
    else:
        # output_padding restores the rows the stride skipped
        flat = ct.reshape(n * k, *ct.shape[2:])
        extra = tuple(p - ((o - 1) * st + w) for p, o, st, w in
                      zip(padded, ct.shape[3:], layer.stride, layer.kernel_size, strict=True))
        transpose = (F.conv_transpose1d, F.conv_transpose2d)[dims - 1]
        g = transpose(flat, weight, stride=layer.stride, output_padding=extra)
    lows = [pad_plan(size, w, st, layer.padding)[0] for size, w, st in
            zip(h.shape[2:], layer.kernel_size, layer.stride, strict=True)]
    window = tuple(slice(lo, lo + size) for lo, size in zip(lows, h.shape[2:], strict=True))
    return g[(slice(None), slice(None), *window)].reshape(n, k, *h.shape[1:])


def _module_pieces(module, h, ct) -> list:
    if isinstance(module, Affine) and isinstance(h, Tensor):
        c_w, c_b = _scales(module)
        if not module.kernel_size and h.ndim == 2:
            return [Factored(h, _full(ct), c_w**2, c_b**2)]
        return _spatial_pieces(module, h, ct, c_w, c_b)
    return [Jacobian(_per_example_jacobian(module, h, _full(ct)))]


def _spatial_pieces(layer: Affine, h: Tensor, ct, c_w: float, c_b: float) -> list:
    """Convolution (or a dense layer acting on the channels of an image)."""
    n = len(h)
    if not layer.kernel_size:
        patches = h.flatten(2)  # (n, C, P)
    elif len(layer.kernel_size) in (1, 2):
        padded = pad_input(h, layer.kernel_size, layer.stride, layer.padding)
        if len(layer.kernel_size) == 1:
            padded = padded.unsqueeze(2)
            window, stride = (1, *layer.kernel_size), (1, *layer.stride)
        else:
            window, stride = layer.kernel_size, layer.stride
        patches = F.unfold(padded, window, stride=stride)  # (n, C*T, P)
    else:  # 3-d convolutions: no unfold in torch, use the generic per-example Jacobian
        return [Jacobian(_per_example_jacobian(layer, h, _full(ct)))]
    if isinstance(ct, Separable):  # g[i, a, o, p] = A[a, o] m[i, o, p]: products for O rows
        k, m = len(ct.a), ct.m.flatten(2)  # (n, O, P)
        mj = torch.bmm(m, patches.transpose(1, 2))  # (n, O, C*T)
        j = (ct.a[None, :, :, None] * mj[:, None]).reshape(n, k, -1)
        g_sum = ct.a[None] * m.sum(-1)[:, None]  # (n, k, O)
    else:  # per-example weight gradients of all k outputs: one batched product
        k, g = ct.shape[1], ct.flatten(3)  # (n, k, O, P)
        j = torch.bmm(g.reshape(n, -1, g.shape[-1]), patches.transpose(1, 2)).reshape(n, k, -1)
        g_sum = g.sum(-1)
    pieces: list = [Jacobian(j, c_w**2)]
    if layer.bias is not None:
        pieces.append(Factored(None, g_sum, 0.0, c_b**2))
    return pieces


def _per_example_jacobian(module, h, ct: Tensor) -> Tensor:
    """``d <ct[i, a], module(h_i)> / d params`` for every example i and output a: (n, k, D)."""
    params = {name: p.detach() for name, p in module.named_parameters()}

    def one(h_i, ct_i):
        def f(p):
            out = functional_call(module, p, (tree_map(lambda t: t.unsqueeze(0), h_i),))
            return tree_map(lambda t: t.squeeze(0), out)

        _, pullback = vjp(f, params)
        grads = vmap(pullback)(ct_i)[0]
        return torch.cat([grads[name].flatten(1) for name in params], dim=1)

    return vmap(one)(h, ct)


def contract_jacobians(j1: Tensor, j2: Tensor, output_axes: str) -> Tensor:
    """NTK block of per-example Jacobians ``(n1, k, D)`` and ``(n2, k, D)``."""
    n1, k = j1.shape[:2]
    n2 = j2.shape[0]
    if output_axes == "trace":
        return j1.reshape(n1, -1) @ j2.reshape(n2, -1).T
    if output_axes == "diagonal":
        return torch.bmm(j1.transpose(0, 1), j2.permute(1, 2, 0)).permute(1, 2, 0)
    full = j1.reshape(n1 * k, -1) @ j2.reshape(n2 * k, -1).T
    return full.reshape(n1, k, n2, k).permute(0, 2, 1, 3)


def contract(pieces1: list, pieces2: list, output_axes: str) -> Tensor:
    """Sum of every piece's NTK contribution (outputs summed, not averaged, for "trace")."""
    total = None
    for p1, p2 in zip(pieces1, pieces2, strict=True):
        if isinstance(p1, Factored):
            term = contract_jacobians(p1.g, p2.g, output_axes)  # <g[i, a], g'[j, b]>
            scale = p1.b2 if p1.h is None else p1.w2 * (p1.h @ p2.h.T) + p1.b2
            if isinstance(scale, Tensor):
                scale = scale.reshape(*scale.shape, *([1] * (term.ndim - 2)))
            term = term * scale
        else:
            term = contract_jacobians(p1.j, p2.j, output_axes)
            if p1.scale != 1.0:
                term = term * p1.scale
        total = term if total is None else total + term
    return total
