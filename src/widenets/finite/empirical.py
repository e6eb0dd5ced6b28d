"""Empirical (finite-width) NTK by Jacobian contraction with ``torch.func``.

``Theta_hat(x1, x2)[a, b] = sum_p d f_a(x1) / d theta_p * d f_b(x2) / d theta_p`` over the
module's trainable parameters (Jacot et al. 2018, eq. 3; Novak et al. 2022, "Fast finite
width neural tangent kernel", §3.1 "Jacobian contraction").
"""

from __future__ import annotations

import torch
from torch.func import functional_call, jacrev, vmap

from widenets.errors import HyperparameterError, expected

OUTPUT_AXES = ("trace", "diagonal", "full")


def empirical_ntk_jacobian(model: torch.nn.Module, x1: torch.Tensor,
                           x2: torch.Tensor | None = None, *, output_axes: str = "trace",
                           batch_size: int = 256) -> torch.Tensor:
    """Empirical NTK of ``model`` by contracting per-example Jacobians.

    Parameters
    ----------
    model : torch.nn.Module
        A module with materialised parameters, output ``(n, k)``.
    x1, x2 : Tensor
        Inputs; ``x2=None`` means ``x1``.
    output_axes : {"trace", "diagonal", "full"}
        ``"trace"``: mean over the k output units, shape ``(n1, n2)``; ``"diagonal"``:
        ``(n1, n2, k)``; ``"full"``: ``(n1, n2, k, k)``.
    batch_size : int
        Inputs per Jacobian block (bounds memory).
    """
    if output_axes not in OUTPUT_AXES:
        raise HyperparameterError(expected("output_axes", f"one of {OUTPUT_AXES}",
                                           repr(output_axes)))
    params = {k: v.detach() for k, v in model.named_parameters() if v.requires_grad}

    def f(p, x):
        return functional_call(model, p, (x.unsqueeze(0),)).squeeze(0)

    jac = vmap(jacrev(f), (None, 0))

    def jacobians(x):
        blocks = [jac(params, x[i:i + batch_size]) for i in range(0, len(x), batch_size)]
        return {k: torch.cat([b[k] for b in blocks]).flatten(2) for k in params}

    j1 = jacobians(x1)
    j2 = j1 if x2 is None else jacobians(x2)
    equation = {"trace": "iap,jap->ij", "diagonal": "iap,jap->ija", "full": "iap,jbp->ijab"}
    out = sum(torch.einsum(equation[output_axes], j1[k], j2[k]) for k in params)
    if output_axes == "trace":
        out = out / next(iter(j1.values())).shape[1]
    return out
