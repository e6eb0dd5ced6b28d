"""Single-input Gaussian expectations of an activation, to near machine precision.

``<f(z)>_K`` for ``z ~ N(0, K)`` on the one-dimensional rule of :mod:`.gaussian`, with the
level raised until two successive levels agree within ``rtol`` of a caller-given scale.
These feed the criticality solver and the phase diagram (effective_theory.md §3.1-3.2)::

    K'(K)       = C_b + C_W <sigma^2>_K                          (kernel map)
    chi_par(K)  = (C_W / 2K^2) <sigma^2 (z^2 - K)>_K = (C_W / K) <z sigma sigma'>_K
    chi_perp(K) = C_W <sigma'^2>_K
    c2(K)       = (C_W / 8K^4) <sigma^2 (z^4 - 6K z^2 + 3K^2)>_K = K''(K) / 2

The first form of ``chi_par`` needs no derivative at all, so it is exact for kinks.
"""

from __future__ import annotations

import math
import warnings

import torch

from widenets.errors import WidenetsWarning
from widenets.theory.effective import gaussian
from widenets.theory.effective.activations import ActivationInfo

Tensor = torch.Tensor
RTOL = 1e-12


def moments(act: ActivationInfo, k: float, rtol: float = RTOL,
            fourth: bool = False) -> dict[str, float]:
    """``s2 = <sigma^2>``, ``d2 = <sigma'^2>``, ``s2z2 = <sigma^2 (z^2-K)>``,
    ``zsd = <z sigma sigma'>``, ``s2h4 = <sigma^2 (z^4 - 6Kz^2 + 3K^2)>``, and with
    ``fourth`` also ``s4 = <sigma^4>``.

    Activations with a closed-form dual kernel get the first five from it, using identity I3
    (``s2z2 = 2K^2 ds2/dK``, ``zsd = K ds2/dK``, ``s2h4 = 4K^4 d^2 s2/dK^2``, derivatives by
    autograd); everything else comes from the quadrature rule, whose level is raised until two
    successive levels agree within ``rtol`` relative to ``<sigma^2> + K <sigma'^2>`` (times
    ``K``, ``K^2`` for the moments with ``z^2``, ``z^4``).
    """
    exact = _closed_form(act, k) if act.closed_form else {}
    if exact and not fourth:
        return exact
    old, err = None, math.inf
    for level in range(1, gaussian.MAX_LEVEL + 1):
        new = _at_level(act, k, level)
        if old is not None:
            both = {**new, **exact}
            scale = {"s2": both["s2"] + k * both["d2"], "d2": both["d2"] + both["s2"] / k}
            scale["zsd"] = scale["s2"]  # <z sigma sigma'> ~ <sigma^2>
            scale["s2z2"] = scale["s2"] * k
            scale["s2h4"] = scale["s2"] * k * k
            scale["s4"] = scale["s2"] ** 2
            err = max(abs(new[n] - old[n]) / max(scale[n], 1e-300) for n in new)
            if err <= rtol:
                break
        old = new
    else:
        warnings.warn(f"single-input quadrature at K={k:g} did not reach rtol={rtol:g} "
                      f"(estimate {err:.2g})", WidenetsWarning, stacklevel=2)
    return {**new, **exact}


def _closed_form(act: ActivationInfo, k: float) -> dict[str, float]:
    v = torch.tensor(k, dtype=torch.float64, requires_grad=True)
    s2 = act.activation.dual_diag(v)
    (ds2,) = torch.autograd.grad(s2, v, create_graph=True)
    # a dual kernel linear in K (the scale-invariant class) leaves no graph for d^2/dK^2
    d2s2 = torch.autograd.grad(ds2, v)[0] if ds2.requires_grad else torch.zeros(())
    with torch.no_grad():
        d2 = act.activation.dual(v, v, v, True)[1]
    ds2, d2s2 = float(ds2.detach()), float(d2s2)
    return {"s2": float(s2.detach()), "d2": float(d2), "s2z2": 2 * k * k * ds2,
            "zsd": k * ds2, "s2h4": 4 * k**4 * d2s2}


def _at_level(act: ActivationInfo, k: float, level: int) -> dict[str, float]:
    rule = gaussian.rule(torch.tensor([[k]], dtype=torch.float64), level)
    z = rule.z[0]
    s = act.function(z)
    s2 = s * s
    if act.closed_form:
        return {"s4": float(rule.mean(s2 * s2))}
    d = act.derivative(z)
    z2 = z * z
    values = {"s2": s2, "d2": d * d, "s2z2": s2 * (z2 - k), "zsd": z * s * d,
              "s2h4": s2 * (z2 * z2 - 6 * k * z2 + 3 * k * k), "s4": s2 * s2}
    return {key: float(rule.mean(v)) for key, v in values.items()}


def chi_parallel(act: ActivationInfo, k: float, weight_var: float) -> float:
    """``chi_par(K) = (C_W / 2K^2) <sigma^2 (z^2 - K)>_K``."""
    return weight_var * moments(act, k)["s2z2"] / (2 * k * k)


def chi_perpendicular(act: ActivationInfo, k: float, weight_var: float) -> float:
    """``chi_perp(K) = C_W <sigma'^2>_K``."""
    return weight_var * moments(act, k)["d2"]


def criticality_gap(act: ActivationInfo, k: float) -> float:
    """``g(K) = <z sigma sigma'>/K - <sigma'^2> = (chi_par - chi_perp) / C_W`` (§3.2)."""
    mo = moments(act, k)
    return mo["zsd"] / k - mo["d2"]
