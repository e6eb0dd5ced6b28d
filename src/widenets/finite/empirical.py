"""Empirical (finite-width) NTK of a torch module with respect to its parameters.

``Theta_hat(x1, x2)[a, b] = sum_p d f_a(x1) / d theta_p * d f_b(x2) / d theta_p`` over the
module's trainable parameters (Jacot et al. 2018, eq. 3), by one of three exact methods of
Novak, Sohl-Dickstein & Schoenholz, "Fast finite width neural tangent kernel", ICML 2022:

* ``"jacobian"``: per-example Jacobians (``vmap(jacrev)``) contracted block by block (§3.1);
* ``"ntk_vector_products"``: ``Theta v`` as a ``jvp`` of a ``vjp`` for every basis vector
  ``v`` of the second batch's outputs (§3.2), never storing the first batch's Jacobian;
* ``"structured"``: Gram matrices of layer inputs and output cotangents for dense layers,
  unfolded patches for convolutions (§4; :mod:`widenets.finite.structured`).

The inputs are processed in blocks of ``batch_size`` so that memory stays bounded.
"""

from __future__ import annotations

import warnings

import torch
from torch.func import functional_call, jacrev, jvp, vjp, vmap
from torch.utils._pytree import tree_leaves

from widenets.errors import HyperparameterError, ShapeError, expected
from widenets.finite import structured
from widenets.validation import as_inputs, check_choice

Tensor = torch.Tensor
OUTPUT_AXES = ("trace", "diagonal", "full")
IMPLEMENTATIONS = ("auto", "jacobian", "ntk_vector_products", "structured")
CACHE_BYTES = 512 * 2**20  # features of the second batch are kept if they fit in this


def empirical_ntk(model: torch.nn.Module, x1, x2=None, *, implementation: str = "auto",
                  output_axes: str = "trace", batch_size: int = 64) -> Tensor:
    """Empirical NTK of a finite network with respect to its parameters.

    Parameters
    ----------
    model : torch.nn.Module
        A module with materialised parameters (``net.module(in_shape=...)``), mapping
        ``(n, ...)`` inputs to ``(n, k)`` outputs, acting on each example separately.
    x1 : Tensor or array ``(n1, ...)``
    x2 : Tensor or array ``(n2, ...)``, optional
        None means ``x1`` (only blocks on and above the diagonal are computed).
    implementation : {"auto", "jacobian", "ntk_vector_products", "structured"}
        See the module docstring; all are exact.  "auto" is "structured" (it handles every
        module, exploiting the structure of widenets Dense/Conv layers and falling back to
        per-module Jacobians elsewhere; the fastest in ``benchmarks/bench_empirical_ntk.py``).
    output_axes : {"trace", "diagonal", "full"}
        ``"trace"``: mean over the k output units, ``(n1, n2)`` (the NTK of one output unit,
        comparable with ``net.kernel(...).ntk``); ``"diagonal"``: ``(n1, n2, k)``;
        ``"full"``: ``(n1, n2, k, k)``.
    batch_size : int
        Inputs per block.

    Returns
    -------
    Tensor
        In the parameters' dtype and on their device.

    Raises
    ------
    HyperparameterError, ShapeError, InputValueError

    Examples
    --------
    >>> import torch, widenets as wn
    >>> net = wn.serial(wn.Dense(512), wn.Relu(), wn.Dense(10))
    >>> model = net.module(seed=0, in_shape=(784,))
    >>> wn.empirical_ntk(model, torch.randn(8, 784)).shape   # doctest: +SKIP
    torch.Size([8, 8])
    """
    if not isinstance(model, torch.nn.Module):
        hint = " (build one with net.module(in_shape=...))" if hasattr(model, "module") else ""
        raise HyperparameterError(expected("model", f"a torch.nn.Module{hint}",
                                           type(model).__name__))
    check_choice("implementation", implementation, IMPLEMENTATIONS)
    check_choice("output_axes", output_axes, OUTPUT_AXES)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise HyperparameterError(expected("batch_size", "a positive int", repr(batch_size)))
    params = [p for p in model.parameters() if p.requires_grad]
    if any(isinstance(p, torch.nn.parameter.UninitializedParameter) for p in params):
        raise HyperparameterError(expected("model", "a module with materialised parameters "
                                           "(build it with net.module(in_shape=...))",
                                           "lazy parameters"))
    dtype = params[0].dtype if params else torch.float64
    x1 = as_inputs("x1", x1, dtype).to(params[0].device if params else "cpu")
    x2 = None if x2 is None else as_inputs("x2", x2, dtype, like=x1)
    check_accepts(model, x1)
    if implementation in ("auto", "structured"):
        left = right = _structured_features(model)
        pair = _structured_contract
    elif implementation == "jacobian":
        left = right = _jacobian_features(model)
        pair = structured.contract_jacobians
    else:
        left, right = _identity, _vjp_features(model)
        pair = _ntk_vector_products(model)
    out, k = tiled(left, right, pair, x1, x2, batch_size, output_axes)
    return out / k if output_axes == "trace" else out


def empirical_ntk_jacobian(model: torch.nn.Module, x1, x2=None, *,
                           output_axes: str = "trace", batch_size: int = 64) -> Tensor:
    """:func:`empirical_ntk` with ``implementation="jacobian"`` (kept for existing callers)."""
    return empirical_ntk(model, x1, x2, implementation="jacobian", output_axes=output_axes,
                         batch_size=batch_size)


def check_accepts(model: torch.nn.Module, x1: Tensor) -> None:
    """One example through the model: inputs it cannot take are the caller's ``x1``."""
    try:
        with torch.no_grad():
            out = model(x1[:1])
    except (RuntimeError, ShapeError) as err:  # ShapeError: from the layers
        raise ShapeError(expected("x1", "inputs the model accepts (examples of the shape "
                                  "it was built for)", f"shape {tuple(x1.shape)}: {err}")
                         ) from err
    if not isinstance(out, Tensor) or out.ndim != 2:
        got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise ShapeError(expected("x1", "inputs that the model maps to outputs of shape "
                                  "(n, n_outputs)", f"shape {tuple(x1.shape)}, giving {got}"))


# -- tiling -----------------------------------------------------------------------------------
def _nbytes(tree) -> int:
    return sum(t.numel() * t.element_size() for t in tree_leaves(tree) if isinstance(t, Tensor))


def _mirror(block: Tensor) -> Tensor:
    """``Theta(x2, x1)`` from ``Theta(x1, x2)``: swap the input axes and the output axes."""
    if block.ndim == 2:
        return block.T
    if block.ndim == 3:
        return block.permute(1, 0, 2)
    return block.permute(1, 0, 3, 2)


def tiled(left, right, pair, x1: Tensor, x2: Tensor | None, batch_size: int,
          output_axes: str) -> tuple[Tensor, int]:
    """Assemble the kernel from blocks: ``pair(left(x1 block), right(x2 block), axes)``.

    ``left``/``right`` return ``(features, k)``.  Right-hand features are cached while they
    fit in :data:`CACHE_BYTES`; with ``x2=None`` only blocks ``j >= i`` are computed.
    """
    symmetric = x2 is None
    x2 = x1 if symmetric else x2
    starts1 = range(0, len(x1), batch_size)
    starts2 = range(0, len(x2), batch_size)
    cache: dict[int, object] = {}
    cached_bytes = 0

    def right_features(j):
        nonlocal cached_bytes
        if j in cache:
            return cache[j]
        feats = right(x2[starts2[j]:starts2[j] + batch_size])
        size = _nbytes(feats)
        if cached_bytes + size <= CACHE_BYTES:
            cache[j] = feats
            cached_bytes += size
        return feats

    rows, k = [], None
    for i, s1 in enumerate(starts1):
        same = symmetric and left is right
        f1 = right_features(i) if same else left(x1[s1:s1 + batch_size])
        row = []
        for j in range(len(starts2)):
            if symmetric and j < i:
                row.append(None)
                continue
            f2 = f1 if (symmetric and j == i and same) else right_features(j)
            k = f2[1] if f2[1] is not None else f1[1]
            row.append(pair(f1[0], f2[0], output_axes))
        rows.append(row)
    if symmetric:
        for i, row in enumerate(rows):
            for j in range(i):
                row[j] = _mirror(rows[j][i])
    return torch.cat([torch.cat(row, dim=1) for row in rows], dim=0), k


# -- the three implementations ------------------------------------------------------------------
def _structured_features(model):
    def features(x):
        return structured.features(model, x)
    return features


def _structured_contract(p1, p2, output_axes):
    if not p1:
        raise HyperparameterError(expected("model", "a module with trainable parameters",
                                           "none"))
    return structured.contract(p1, p2, output_axes)


def _params(model) -> dict[str, Tensor]:
    params = {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}
    if not params:
        raise HyperparameterError(expected("model", "a module with trainable parameters",
                                           "none"))
    return params


def _single(model):
    def f(p, x):
        out = functional_call(model, p, (x.unsqueeze(0),)).squeeze(0)
        if out.ndim != 1:
            raise ShapeError(expected("model output", "of shape (n, n_outputs)",
                                      (None, *out.shape)))
        return out
    return f


def _jacobian_features(model):
    params, f = _params(model), _single(model)
    jac = vmap(jacrev(f), (None, 0))

    def features(x):
        j = jac(params, x)
        flat = torch.cat([j[name].flatten(2) for name in params], dim=2)  # (n, k, P)
        return flat, flat.shape[1]
    return features


def _identity(x):
    return x, None


def _vjp_features(model):
    """For each example of a block and each output, the parameter vector ``J^T e``."""
    params, f = _params(model), _single(model)

    def tangents(x_i):
        out, pullback = vjp(lambda p: f(p, x_i), params)
        eye = torch.eye(len(out), dtype=out.dtype, device=out.device)
        return vmap(pullback)(eye)[0]  # {name: (k, *shape)}

    def features(x):
        t = vmap(tangents)(x)  # {name: (n, k, *shape)}
        k = next(iter(t.values())).shape[1]
        return t, k
    return features


def _ntk_vector_products(model):
    params, f = _params(model), _single(model)

    def block(x1, t2, output_axes):
        n2, k = next(iter(t2.values())).shape[:2]
        flat = {name: v.flatten(0, 1) for name, v in t2.items()}  # (n2 k, *shape)

        def jvp_one(tangent):
            return jvp(lambda p: vmap(f, (None, 0))(p, x1), (params,), (tangent,))[1]

        with warnings.catch_warnings():
            # torch's first forward-mode call scripts its jvp decompositions with the
            # deprecated torch.jit.script (torch 2.13); nothing a caller can act on
            warnings.filterwarnings("ignore", message=".*torch.jit.script.*",
                                    category=DeprecationWarning)
            theta = vmap(jvp_one)(flat)  # (n2 k, n1, k): Theta(x1, x2)[i, a, j, b] at [j b, i, a]
        theta = theta.reshape(n2, k, len(x1), k).permute(2, 0, 3, 1)  # (n1, n2, a, b)
        if output_axes == "full":
            return theta
        diag = theta.diagonal(dim1=2, dim2=3)
        return diag if output_axes == "diagonal" else diag.sum(-1)
    return block
