"""The single-input recursions written out as scalars (effective_theory.md §4.3 and §8).

A second code path, independent of the tensor one in :mod:`.recursions` (which handles one
input as the ``m = 1`` case): the two must agree to rounding, and this one is cheap enough to
run thousands of layers for the depth scalings of §3.4.  With ``K`` the kernel of layer ``l``,
``chi_par = (C_W / 2K^2) <sigma^2 (z^2 - K)>``, ``chi_perp = C_W <sigma'^2>``,
``Omega = lambda_W sigma^2 + C_W H sigma'^2`` and ``y = <Omega (z^2 - K)>``::

    K'  = C_b + C_W <sigma^2>
    V'  = C_W^2 Var(sigma^2) + r chi_par^2 V
    K1' = r [chi_par K1 + (C_W / 8K^4) <sigma^2 (z^4 - 6K z^2 + 3K^2)> V]
    H'  = lambda_b + lambda_W <sigma^2> + chi_perp H
    B'  = C_W^2 <sigma'^4> H^2 + r chi_perp^2 B
    F'  = C_W^2 <sigma'^2 sigma^2> H + r chi_par^2 F
    D'  = C_W Cov(Omega, sigma^2) + r [(C_W / 4K^4) y <sigma^2 (z^2 - K)> V + chi_par chi_perp D]
    A'  = Var(Omega) + r [y^2 V / (4K^4) + chi_perp y D / K^2 + chi_perp^2 A]
"""

from __future__ import annotations

import math
import warnings

import torch

from widenets.errors import WidenetsWarning
from widenets.theory.effective import gaussian
from widenets.theory.effective.activations import ActivationInfo
from widenets.theory.effective.recursions import Hyper

Tensor = torch.Tensor
NAMES = ("K", "K1", "V", "H", "A", "B", "D", "F")


def _moments(act: ActivationInfo, k: float, h: float, hyper: Hyper, level: int) -> dict:
    rule = gaussian.rule(torch.tensor([[k]], dtype=torch.float64), level)
    z = rule.z[0]
    s = act.function(z)
    d = act.derivative(z)
    mean = rule.mean
    s2, d2 = s * s, d * d
    omega = hyper.lambda_W * s2 + hyper.weight_var * h * d2
    return {
        "s2": mean(s2), "s4": mean(s2 * s2), "d2": mean(d2), "d4": mean(d2 * d2),
        "d2s2": mean(d2 * s2), "s2_z2": mean(s2 * (z * z - k)),
        "s2_h4": mean(s2 * (z**4 - 6 * k * z * z + 3 * k * k)),
        "om": mean(omega), "om2": mean(omega * omega), "om_s2": mean(omega * s2),
        "y": mean(omega * (z * z - k)),
    }


def _step(state: dict, hyper: Hyper, act: ActivationInfo, r: float, level: int) -> dict:
    k, h = state["K"], state["H"]
    mo = {key: float(v) for key, v in _moments(act, k, h, hyper, level).items()}
    cw, cb = hyper.weight_var, hyper.bias_var
    chi_par = cw * mo["s2_z2"] / (2 * k * k)
    chi_perp = cw * mo["d2"]
    return {
        "K": cb + cw * mo["s2"],
        "V": cw**2 * (mo["s4"] - mo["s2"] ** 2) + r * chi_par**2 * state["V"],
        "K1": r * (chi_par * state["K1"] + cw / (8 * k**4) * mo["s2_h4"] * state["V"]),
        "H": hyper.lambda_b + hyper.lambda_W * mo["s2"] + chi_perp * h,
        "B": cw**2 * mo["d4"] * h * h + r * chi_perp**2 * state["B"],
        "F": cw**2 * mo["d2s2"] * h + r * chi_par**2 * state["F"],
        "D": cw * (mo["om_s2"] - mo["om"] * mo["s2"])
        + r * (cw / (4 * k**4) * mo["y"] * mo["s2_z2"] * state["V"]
               + chi_par * chi_perp * state["D"]),
        "A": mo["om2"] - mo["om"] ** 2
        + r * (mo["y"] ** 2 * state["V"] / (4 * k**4) + chi_perp * mo["y"] * state["D"] / k**2
               + chi_perp**2 * state["A"]),
    }


def run(g0: float, hypers: list[Hyper], ratios: list[float], act: ActivationInfo,
        rtol: float = 1e-11) -> dict[str, list[float]]:
    """Single-input statistics of layers ``1..L`` as lists of floats (layer 1 first).

    ``g0 = |x|^2 / n0``; ``ratios[l-1] = n_l / n_{l-1}``.  Each layer is computed on two
    successive quadrature levels until they agree within ``rtol`` (relative to ``K``, ``K^2``,
    ``H``, ``H^2``, ``H K`` as in :mod:`.engine`).
    """
    first = hypers[0]
    state = {"K": first.bias_var + first.weight_var * g0,
             "H": first.lambda_b + first.lambda_W * g0,
             "K1": 0.0, "V": 0.0, "A": 0.0, "B": 0.0, "D": 0.0, "F": 0.0}
    out = {name: [state[name]] for name in NAMES}
    level = 1
    for hyper, r in zip(hypers[1:], ratios, strict=True):
        state, level = _adaptive(state, hyper, act, r, rtol, max(level - 1, 0))
        for name in NAMES:
            out[name].append(state[name])
    return out


def _adaptive(state, hyper, act, r, rtol, start):
    old, err = None, math.inf
    for level in range(start, gaussian.MAX_LEVEL + 1):
        new = _step(state, hyper, act, r, level)
        if old is not None:
            k, h = abs(new["K"]), abs(new["H"])
            scale = {"K": k, "K1": k, "V": k * k, "H": h, "A": h * h, "B": h * h, "D": h * k,
                     "F": h * k}
            err = max(abs(new[n] - old[n]) / max(scale[n], 1e-300) for n in NAMES)
            if err <= rtol:
                return new, level
        old = new
    warnings.warn(f"single-input quadrature did not reach rtol={rtol:g} (estimate {err:.2g})",
                  WidenetsWarning, stacklevel=3)
    return new, gaussian.MAX_LEVEL
