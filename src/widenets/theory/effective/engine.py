"""Run the layer recursions through a network, choosing the quadrature level per layer.

Every layer map is evaluated on two successive quadrature levels; the finer result is kept
once the two agree within ``rtol`` relative to each tensor's natural scale (``K`` for ``K``
and ``K1``, ``K^2`` for ``V``, ``H`` for ``H``, ``H^2`` for ``A`` and ``B``, ``H K`` for ``D``
and ``F``).  The difference between the levels bounds the error of the coarser one, so the
kept result meets the tolerance with room to spare; if the finest level does not, a
:class:`~widenets.errors.WidenetsWarning` says so.

One or two inputs use one joint rule.  For more inputs, the kernel and NTK mean need only
pairs (each entry depends on its 2x2 block), and so does ``K1``: its recursion only involves
``V`` and ``K1`` restricted to the same pair (by identity I3 the response tensor
``chi_{ab,cd}`` vanishes unless ``{c, d}`` is in ``{a, b}``), so it is run pair by pair.
"""

from __future__ import annotations

import itertools
import math
import warnings
from dataclasses import dataclass, field

import torch

from widenets.errors import WidenetsWarning
from widenets.theory.effective import gaussian
from widenets.theory.effective.activations import ActivationInfo
from widenets.theory.effective.recursions import Hyper, initial_state, layer_map

Tensor = torch.Tensor


@dataclass
class Diagnostics:
    """Quadrature levels used and the error estimate of every layer map."""

    levels: list[int] = field(default_factory=list)
    errors: list[float] = field(default_factory=list)

    @property
    def max_error(self) -> float:
        return max(self.errors, default=0.0)


def _scales(new: dict[str, Tensor]) -> dict[str, float]:
    k = float(new["K"].abs().max())
    h = float(new["H"].abs().max()) if "H" in new else 1.0
    base = {"K": k, "K1": k, "V": k * k, "H": h, "A": h * h, "B": h * h, "D": h * k,
            "F": h * k}
    tiny = torch.finfo(torch.float64).tiny
    return {key: max(base[key], tiny) for key in new}


def step(state: dict[str, Tensor], hyper: Hyper, act: ActivationInfo, r: float, rtol: float,
         start: int, diag: Diagnostics) -> dict[str, Tensor]:
    """One adaptive layer map (see the module docstring)."""
    old, err = None, math.inf
    radius = gaussian.RADIUS
    level = start
    for level in range(start, gaussian.MAX_LEVEL + 1):
        rule = gaussian.rule(state["K"], level, radius)
        new = layer_map(state, hyper, act, r, rule)
        done, err = gaussian.converged(new, old, _scales(new), rtol)
        if done:
            with torch.no_grad():
                growth = act.function(rule.z) ** 4
            if gaussian.tail_fraction(rule, growth) > rtol and radius < 4 * gaussian.RADIUS:
                radius *= 1.5  # the activation grows fast enough for the tail to matter
                old = None
                continue
            break
        old = new
    else:
        warnings.warn(f"quadrature did not reach rtol={rtol:g} (estimated relative error "
                      f"{err:.2g} at level {level}); results are less accurate than asked.",
                      WidenetsWarning, stacklevel=4)
    diag.levels.append(level)
    diag.errors.append(err)
    return new


def propagate(g0: Tensor, hypers: list[Hyper], ratios: list[float], act: ActivationInfo,
              fields: tuple[str, ...], rtol: float) -> tuple[list[dict[str, Tensor]], Diagnostics]:
    """Statistics of layers ``1..L`` for inputs with Gram matrix ``g0 = x x^T / n0``.

    ``ratios[l]`` is ``n_l / n_{l-1}`` for the map from layer ``l`` to ``l+1`` (1-based ``l``).
    """
    m = g0.shape[0]
    if m > 2 or (fields == ("K", "H") or fields == ("K",)) and act.closed_form:
        return _pairwise(g0, hypers, ratios, act, fields, rtol)
    diag = Diagnostics()
    states = [initial_state(g0, hypers[0], fields)]
    start = 0
    for hyper, r in zip(hypers[1:], ratios, strict=True):
        if "V" not in fields and act.closed_form:
            states.append(_closed_form_step(states[-1], hyper, act))
            continue
        states.append(step(states[-1], hyper, act, r, rtol, start, diag))
        start = max(0, diag.levels[-1] - 1)
    return states, diag


def _closed_form_step(state, hyper, act):
    k = state["K"]
    v = torch.diagonal(k)
    e_ss, e_dd = act.activation.dual(k, v[:, None], v[None, :], "H" in state)
    out = {"K": hyper.bias_var + hyper.weight_var * e_ss}
    if "H" in state:
        out["H"] = hyper.lambda_b + hyper.lambda_W * e_ss + hyper.weight_var * e_dd * state["H"]
    return out


def _pairwise(g0, hypers, ratios, act, fields, rtol):
    """Many inputs: the kernel, NTK mean and K1 pair by pair (see the module docstring)."""
    m, n_layers = g0.shape[0], len(hypers)
    if act.closed_form and "V" not in fields:
        states = [initial_state(g0, hypers[0], fields)]
        for hyper in hypers[1:]:
            states.append(_closed_form_step(states[-1], hyper, act))
        return states, Diagnostics()
    keep = tuple(f for f in ("K", "K1", "H") if f in fields)
    out = [{f: g0.new_zeros(m, m) for f in keep} for _ in range(n_layers)]
    diag = Diagnostics()
    sub = tuple(f for f in fields if f in ("K", "K1", "V", "H"))
    blocks = [(i,) for i in range(m)] + list(itertools.combinations(range(m), 2))
    for block in blocks:
        idx = list(block)
        states, d = propagate(g0[idx][:, idx], hypers, ratios, act, sub, rtol)
        diag.levels += d.levels
        diag.errors += d.errors
        for layer, state in enumerate(states):
            for f in keep:
                if len(idx) == 1:
                    out[layer][f][idx[0], idx[0]] = state[f][0, 0]
                else:
                    out[layer][f][idx[0], idx[1]] = out[layer][f][idx[1], idx[0]] = state[f][0, 1]
    return out, diag
